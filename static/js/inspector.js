// Everything recorded about the selected node, at the player's current step.
import { clear, el } from "./dom.js";
import {
  flatten,
  formatData,
  formatNumber,
  formatValues,
  isFloating,
  shapeText,
} from "./format.js";
import { heatmap, histogram } from "./charts.js";
import { renderRule, stepOf } from "./rule-view.js"; // chain rule (issue 10)

// Booleans as Python prints them.
const pyBool = (value) => (value ? "True" : "False");

function row(label, ...value) {
  return [el("dt", {}, label), el("dd", {}, ...value)];
}

const TABLE_CELLS = 64; // larger matrices show as a heatmap with its colour key only

// Values as torch prints them: one number, a row of numbers, or a small table for a matrix.
function valuesView(data) {
  const floating = isFloating(data.dtype);
  const values = data.values;
  if (!Array.isArray(values))
    return el(
      "code",
      { class: "values scalar", "data-testid": "value-text" },
      formatNumber(values, floating),
    );
  const flat = flatten(values);
  const texts = formatValues(flat, floating);
  if (data.shape.length === 2 && flat.length <= TABLE_CELLS) {
    const columns = data.shape[1];
    const rows = [];
    for (let i = 0; i < data.shape[0]; i += 1) {
      rows.push(
        el(
          "tr",
          {},
          ...texts.slice(i * columns, (i + 1) * columns).map((text) => el("td", {}, text)),
        ),
      );
    }
    return el(
      "table",
      { class: "values matrix", "data-testid": "value-text" },
      el("tbody", {}, ...rows),
    );
  }
  return el(
    "code",
    { class: "values", "data-testid": "value-text" },
    "[",
    ...texts.flatMap((text, i) => [
      el("span", { class: "num" }, text),
      i < texts.length - 1 ? ", " : "",
    ]),
    "]",
  );
}

function valueBlock(data, t) {
  if (!data) return el("span", { class: "muted" }, "None");
  const parts = [];
  const count = data.shape.reduce((a, b) => a * b, 1);
  if (data.values !== null && data.values !== undefined) {
    parts.push(valuesView(data));
    if (
      Array.isArray(data.values) &&
      Array.isArray(data.values[0]) &&
      typeof data.values[0][0] === "number" &&
      count > 1
    ) {
      parts.push(
        heatmap(data.values, {
          cell: Math.max(10, Math.min(24, 220 / data.values[0].length)),
          title: t("heatmap"),
        }),
      );
    }
  } else {
    parts.push(el("span", {}, `${shapeText(data.shape)} · ${formatData(data)}`));
  }
  if (data.stats && count > 1) {
    const s = data.stats;
    const [min, max, mean, std] = formatValues([s.min, s.max, s.mean, s.std]);
    parts.push(
      el(
        "div",
        { class: "stats" },
        `${t("min")} ${min} · ${t("max")} ${max} · ${t("mean")} ${mean} · ${t("std")} ${std}`,
      ),
    );
  }
  if (data.heatmap) parts.push(heatmap(data.heatmap, { cell: 12, title: t("heatmap") }));
  if (data.histogram) {
    parts.push(histogram(data.histogram, { title: t("histogram") }));
    if (data.histogram.sample) {
      const total = data.shape.reduce((a, b) => a * b, 1);
      const words = {
        n: data.histogram.sample.toLocaleString("en"),
        total: total.toLocaleString("en"),
      };
      parts.push(
        el(
          "div",
          { class: "muted", "data-testid": "histogram-sample" },
          t("histogramSample", words),
        ),
      );
    }
  }
  return el("div", { class: "value-block" }, ...parts);
}

export function renderInspector(container, { graph, timeline, state, nodeId, t, onSelect }) {
  clear(container);
  const node = nodeId ? timeline.byId.get(nodeId) : null;
  if (!node) {
    container.append(el("p", { class: "muted" }, t("selectNode")));
    return;
  }
  const fields = [];
  const link = (id) =>
    el(
      "button",
      { type: "button", class: "link", onclick: () => onSelect(id) },
      timeline.byId.get(id)?.label ?? id,
    );
  if (node.kind === "tensor") {
    container.append(el("h3", { "data-testid": "inspector-title" }, node.name ?? node.label));
    const grad = state.grads.get(node.id);
    fields.push(
      ...row(t("name"), node.name ?? "—", node.line ? ` (${t("line")} ${node.line})` : ""),
      ...row(t("shape"), `[${node.shape.join(", ")}]`),
      ...row(t("dtype"), node.dtype),
      ...row(t("deviceField"), node.device),
      ...row(t("requiresGrad"), pyBool(node.requires_grad)),
      ...row(t("isLeaf"), pyBool(node.is_leaf)),
      ...row(t("retainsGrad"), pyBool(node.retains_grad)),
      ...row(t("gradFn"), node.grad_fn ?? "None"),
      ...row(t("version"), String(node.version)),
      ...row(t("value"), valueBlock(node.value, t)),
    );
    if (state.position?.phase === "backward") {
      const now = grad
        ? el(
            "div",
            {},
            grad.parts.length > 1
              ? el(
                  "div",
                  { class: "parts" },
                  `${t("contributions")}: ${grad.parts.map((p) => formatData(p, 3)).join(" + ")}`,
                )
              : null,
            grad.total ? valueBlock(grad.total, t) : valueBlock(grad.parts[0], t),
          )
        : el("span", { class: "muted" }, t("notArrived"));
      fields.push(...row(t("gradNow"), now));
    }
    let dotGrad;
    const muted = (text) => el("span", { class: "muted" }, text);
    if (!node.requires_grad) dotGrad = muted(t("noneNoGrad"));
    else if (!node.is_leaf)
      dotGrad = node.retains_grad && node.grad ? valueBlock(node.grad, t) : muted("None");
    else if (state.position?.phase === "backward")
      dotGrad = grad?.accumulated ? valueBlock(grad.accumulated, t) : muted(t("notArrived"));
    else
      dotGrad = node.grad
        ? el("div", {}, muted(t("atEnd")), valueBlock(node.grad, t))
        : muted("None");
    dotGrad = el("div", { "data-testid": "dot-grad" }, dotGrad);
    fields.push(...row(t("gradAttr"), dotGrad));
    // chain rule (issue 10): where gradients met and how .grad changed, at this step
    const arrived = stepOf(graph, state.position, timeline.producer.get(node.id))?.rule;
    if (arrived?.meet)
      fields.push(
        ...row(t("gradientsMeetShort"), el("span", { "data-testid": "meet" }, arrived.meet.text)),
      );
    if (arrived?.accumulate)
      fields.push(
        ...row(
          t("accumulated"),
          el("span", { "data-testid": "accumulate" }, arrived.accumulate.text),
        ),
      );
    container.append(el("dl", { class: "fields" }, ...fields));
    if (!node.is_leaf)
      container.append(
        el("p", { class: "note" }, t(node.retains_grad ? "retainedNote" : "nonLeafNote")),
      );
    return;
  }
  container.append(
    el("h3", { "data-testid": "inspector-title" }, `${node.label} · ${node.grad_fn ?? ""}`),
  );
  fields.push(
    ...row(t("op_"), node.op),
    ...row(t("gradFn"), node.grad_fn ?? "None"),
    ...row(t("line"), node.line ? String(node.line) : "—"),
    ...row(t("moduleField"), node.module ?? "—"),
  );
  if (node.variable) fields.push(...row(t("variableField"), link(node.variable)));
  const record = graph.backward[state.position?.pass ?? 0];
  const step =
    state.position?.phase === "backward"
      ? record?.steps.find((s, i) => s.node === node.id && i <= state.position.index)
      : null;
  if (step) {
    fields.push(
      ...row(t("gradOutputs"), el("div", {}, ...step.grad_outputs.map((g) => valueBlock(g, t)))),
    );
    fields.push(
      ...row(
        t("gradInputs"),
        el(
          "div",
          {},
          ...step.grad_inputs.map((g, k) =>
            el(
              "div",
              {},
              node.next[k]
                ? `→ ${timeline.byId.get(node.next[k])?.label ?? node.next[k]}: `
                : "→ None: ",
              g ? formatData(g, 4) : "None",
            ),
          ),
        ),
      ),
    );
  }
  if (step?.rule) fields.push(...row(t("rule"), renderRule(step.rule, t))); // chain rule (issue 10)
  if (node.saved?.length) {
    fields.push(
      ...row(
        t("saved"),
        el(
          "ul",
          { class: "saved" },
          ...node.saved.map((s) =>
            el(
              "li",
              {},
              `${s.name}: `,
              s.tensor ? link(s.tensor) : s.value ? formatData(s.value, 4) : (s.repr ?? ""),
            ),
          ),
        ),
      ),
    );
  }
  container.append(el("dl", { class: "fields" }, ...fields));
}
