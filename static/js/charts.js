// Small SVG charts: heatmap of a 2-D preview, histogram, and training series.
import { el, svg } from "./dom.js";
import { formatNumber } from "./format.js";
import uPlot from "../vendor/uplot/uPlot.esm.js";

function colour(value, low, high) {
  const span = Math.max(Math.abs(low), Math.abs(high)) || 1;
  const t = Math.max(-1, Math.min(1, value / span));
  return t >= 0 ? `rgba(214, 96, 77, ${t})` : `rgba(67, 147, 195, ${-t})`;
}

export function heatmap(rows, { cell = 10, title = "" } = {}) {
  const flat = rows.flat().filter((v) => typeof v === "number");
  const low = Math.min(...flat);
  const high = Math.max(...flat);
  const width = rows[0].length * cell;
  const chart = svg("svg", {
    class: "heatmap",
    width,
    height: rows.length * cell,
    viewBox: `0 0 ${width} ${rows.length * cell}`,
    role: "img",
    "aria-label": title || "heatmap",
  });
  rows.forEach((row, i) =>
    row.forEach((value, j) => {
      chart.append(
        svg(
          "rect",
          {
            x: j * cell,
            y: i * cell,
            width: cell,
            height: cell,
            fill: typeof value === "number" ? colour(value, low, high) : "#999",
          },
          svg("title", {}, `[${i}, ${j}] ${formatNumber(value)}`),
        ),
      );
    }),
  );
  return el("figure", { class: "heatmap-figure" }, chart, colourKey(low, high));
}

// The key under a heatmap: blue for negative, red for positive, labelled with the range's ends.
export function colourKey(low, high) {
  const span = Math.max(Math.abs(low), Math.abs(high)) || 1;
  return el(
    "div",
    { class: "colour-key", "data-testid": "colour-key" },
    el("span", {}, formatNumber(-span)),
    el("span", { class: "colour-ramp", "aria-hidden": "true" }),
    el("span", {}, formatNumber(span)),
  );
}

export function histogram(hist, { width = 220, height = 60, title = "histogram" } = {}) {
  const max = Math.max(...hist.counts, 1);
  const bar = width / hist.counts.length;
  const chart = svg("svg", {
    class: "histogram",
    width,
    height: height + 14,
    viewBox: `0 0 ${width} ${height + 14}`,
    role: "img",
    "aria-label": title,
  });
  hist.counts.forEach((count, i) => {
    const h = (count / max) * height;
    chart.append(
      svg(
        "rect",
        { x: i * bar + 1, y: height - h, width: bar - 2, height: h },
        svg(
          "title",
          {},
          `${formatNumber(hist.edges[i])} … ${formatNumber(hist.edges[i + 1])}: ${count}`,
        ),
      ),
    );
  });
  chart.append(
    svg("text", { x: 0, y: height + 12, class: "axis" }, formatNumber(hist.edges[0])),
    svg(
      "text",
      { x: width, y: height + 12, class: "axis", "text-anchor": "end" },
      formatNumber(hist.edges.at(-1)),
    ),
  );
  return chart;
}

const PALETTE = ["#c0392b", "#1f6fb2", "#2e7d32", "#7b4fa0", "#b35900", "#00796b"];

// Loss, parameters and one-element .grad values per backward pass: one shared y scale, with axes.
export function seriesChart(series, { width = 320, height = 200, t = (k) => k } = {}) {
  const shown = series
    .slice(0, PALETTE.length)
    .map((s) => (s.kind === "loss" && s.name === "loss" ? { ...s, name: t("lossSeries") } : s));
  const length = Math.max(...shown.map((s) => s.values.length));
  const xs = Array.from({ length }, (_, i) => i + 1);
  const data = [
    xs,
    ...shown.map((s) => xs.map((_, i) => (typeof s.values[i] === "number" ? s.values[i] : null))),
  ];
  const box = el("div", { class: "series-chart", role: "img", "aria-label": t("seriesLabel") });
  const styles = getComputedStyle(document.documentElement);
  const ink = styles.getPropertyValue("--fg").trim() || "#1f2328";
  const grid = styles.getPropertyValue("--line").trim() || "#d9d6cf";
  const axis = {
    stroke: ink,
    grid: { stroke: grid, width: 1 },
    ticks: { stroke: grid },
    font: "13px system-ui, sans-serif",
    labelFont: "13px system-ui, sans-serif",
  };
  const options = {
    width,
    height,
    legend: { show: false },
    cursor: { show: true, points: { size: 6 } },
    scales: { x: { time: false } },
    axes: [
      {
        ...axis,
        label: t("passAxis"),
        incrs: [1, 2, 5, 10, 20, 50, 100],
        values: (_, ticks) => ticks.map((v) => String(v)),
      },
      { ...axis, size: 56, values: (_, ticks) => ticks.map((v) => formatNumber(v)) },
    ],
    series: [
      { label: t("passAxis") },
      ...shown.map((s, i) => ({
        label: s.name,
        stroke: PALETTE[i],
        width: s.kind === "loss" ? 3 : 2,
        points: { show: length <= 12 },
      })),
    ],
  };
  options.hooks = {
    setScale: [
      (u, key) => {
        if (key !== "y") return;
        box.dataset.yMin = String(u.scales.y.min);
        box.dataset.yMax = String(u.scales.y.max);
      },
    ],
  };
  const plot = new uPlot(options, data, box);
  const legend = el("ul", { class: "series-legend" });
  shown.forEach((s, i) => {
    const numbers = s.values.filter((v) => typeof v === "number");
    if (!numbers.length) return;
    legend.append(
      el(
        "li",
        { style: `--swatch: ${PALETTE[i]}` },
        `${s.name}: ${formatNumber(numbers[0])} → ${formatNumber(numbers.at(-1))}`,
      ),
    );
  });
  return { element: el("div", { class: "series-panel-body" }, box, legend), plot };
}
