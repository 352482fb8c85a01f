// Small SVG charts: heatmap of a 2-D preview, histogram, and training series.
import { el, svg } from "./dom.js";
import { formatNumber } from "./format.js";

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
  const chart = svg("svg", { class: "heatmap", width, height: rows.length * cell, viewBox: `0 0 ${width} ${rows.length * cell}`, role: "img", "aria-label": title || "heatmap" });
  rows.forEach((row, i) => row.forEach((value, j) => {
    chart.append(svg("rect", { x: j * cell, y: i * cell, width: cell, height: cell, fill: typeof value === "number" ? colour(value, low, high) : "#999" },
      svg("title", {}, `[${i}, ${j}] ${formatNumber(value)}`)));
  }));
  return chart;
}

export function histogram(hist, { width = 220, height = 60 } = {}) {
  const max = Math.max(...hist.counts, 1);
  const bar = width / hist.counts.length;
  const chart = svg("svg", { class: "histogram", width, height: height + 14, viewBox: `0 0 ${width} ${height + 14}`, role: "img", "aria-label": "histogram" });
  hist.counts.forEach((count, i) => {
    const h = (count / max) * height;
    chart.append(svg("rect", { x: i * bar + 1, y: height - h, width: bar - 2, height: h },
      svg("title", {}, `${formatNumber(hist.edges[i])} … ${formatNumber(hist.edges[i + 1])}: ${count}`)));
  });
  chart.append(svg("text", { x: 0, y: height + 12, class: "axis" }, formatNumber(hist.edges[0])),
    svg("text", { x: width, y: height + 12, class: "axis", "text-anchor": "end" }, formatNumber(hist.edges.at(-1))));
  return chart;
}

const PALETTE = ["#d6604d", "#4393c3", "#5aae61", "#9970ab", "#e08214", "#35978f"];

export function seriesChart(series, { width = 300, height = 120 } = {}) {
  const chart = svg("svg", { class: "series", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "training series" });
  const legend = el("ul", { class: "series-legend" });
  series.slice(0, PALETTE.length).forEach((s, index) => {
    const values = s.values.map((v) => (typeof v === "number" ? v : null));
    const numbers = values.filter((v) => v !== null);
    if (!numbers.length) return;
    const low = Math.min(...numbers);
    const high = Math.max(...numbers);
    const span = high - low || 1;
    const step = width / Math.max(1, values.length - 1);
    const points = values.map((v, i) => (v === null ? null : `${(i * step).toFixed(1)},${(height - ((v - low) / span) * (height - 8) - 4).toFixed(1)}`)).filter(Boolean);
    chart.append(svg("polyline", { points: points.join(" "), fill: "none", stroke: PALETTE[index], "stroke-width": s.kind === "loss" ? 2.5 : 1.5 },
      svg("title", {}, `${s.name}: ${formatNumber(numbers[0])} → ${formatNumber(numbers.at(-1))}`)));
    legend.append(el("li", { style: `--swatch: ${PALETTE[index]}` }, `${s.name}: ${formatNumber(numbers[0])} → ${formatNumber(numbers.at(-1))}`));
  });
  return el("div", { class: "series-chart" }, chart, legend);
}
