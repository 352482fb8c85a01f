// The chain rule of a backward step, typeset with MathML from the rule the server recorded.
import { el } from "./dom.js";

const MATH_NS = "http://www.w3.org/1998/Math/MathML";
const TOKEN =
  /\s+|\+=|\d+(?:\.\d+)?(?:e[+-]?\d+)?|[A-Za-z_][A-Za-z0-9_.]*(?:\[[^\]\s]*\])*|\^|ᵀ|./gu;

function m(tag, attrs = {}, ...children) {
  const node = document.createElementNS(MATH_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  for (const child of children)
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  return node;
}

function atom(token) {
  if (/^\d/.test(token)) return m("mn", {}, token);
  if (/^[A-Za-z_]/.test(token)) return m("mi", {}, token);
  return m("mo", {}, token === "*" ? "·" : token);
}

// Nodes for a run of tokens: ^ raises the next atom or parenthesised group, ᵀ marks a transpose.
function parse(tokens, start = 0, close = null) {
  const out = [];
  let i = start;
  while (i < tokens.length) {
    const token = tokens[i];
    if (token === close) return { nodes: out, next: i + 1 };
    if (token === "^" && out.length && i + 1 < tokens.length) {
      let exponent;
      if (tokens[i + 1] === "(") {
        const group = parse(tokens, i + 2, ")");
        exponent = m("mrow", {}, ...group.nodes);
        i = group.next;
      } else {
        exponent = atom(tokens[i + 1]);
        i += 2;
      }
      out.push(m("msup", {}, out.pop(), exponent));
      continue;
    }
    if (token === "ᵀ" && out.length) {
      out.push(m("msup", {}, out.pop(), m("mi", { mathvariant: "normal" }, "T")));
      i += 1;
      continue;
    }
    if (token === "(") {
      const group = parse(tokens, i + 1, ")");
      out.push(m("mrow", {}, m("mo", {}, "("), ...group.nodes, m("mo", {}, ")")));
      i = group.next;
      continue;
    }
    out.push(atom(token));
    i += 1;
  }
  return { nodes: out, next: i };
}

// A MathML row for a formula written in the server's plain notation ("grad_y · (2·x)").
export function formula(text) {
  const tokens = (String(text).match(TOKEN) ?? []).filter((t) => !/^\s+$/.test(t));
  return parse(tokens).nodes;
}

export function math(...rows) {
  return m("math", {}, m("mrow", {}, ...rows.flat()));
}

// ∂out/∂input as a fraction.
function partial(output, input) {
  return m(
    "mfrac",
    {},
    m("mrow", {}, m("mo", {}, "∂"), ...formula(output)),
    m("mrow", {}, m("mo", {}, "∂"), ...formula(input)),
  );
}

function term(rule, t, translate) {
  const local = math(partial(rule.output, t.name), m("mo", {}, "="), ...formula(t.local));
  const product = math(...formula(`grad_${t.name}`), m("mo", {}, "="), ...formula(t.product));
  const numbers = math(m("mo", {}, "="), ...formula(t.numbers));
  const flag =
    t.agrees === false
      ? el("p", { class: "rule-warning" }, t.value ? `≠ ${t.numbers}` : "≠")
      : null;
  return el(
    "div",
    { class: "rule-term", "data-testid": "rule-term" },
    el("div", { class: "rule-local" }, local),
    el("div", { class: "rule-product" }, product),
    el("div", { class: "rule-numbers", "data-testid": "rule-numbers" }, numbers),
    words(t.message, translate),
    flag,
  );
}

// A rule's words in the reader's language (the server sends a message key and its parameters).
function words(message, translate) {
  if (!message) return null;
  const key = `rule.${message.key}`;
  const text = translate(key, message.params ?? {});
  return el(
    "p",
    { class: "rule-words", "data-testid": "rule-words" },
    text === key ? message.text : text,
  );
}

// Everything a StepRule says: forward expression, a term per input, meeting gradients, .grad update.
export function renderRule(rule, t) {
  if (!rule) return null;
  const parts = [];
  if (rule.expression)
    parts.push(el("div", { class: "rule-expression" }, math(...formula(rule.expression))));
  for (const item of rule.terms ?? []) parts.push(term(rule, item, t));
  if (rule.meet) parts.push(meetLine(rule, t));
  if (rule.accumulate)
    parts.push(
      el(
        "div",
        { class: "rule-accumulate", "data-testid": "rule-accumulate" },
        rule.accumulate.text,
      ),
    );
  if (!rule.known)
    parts.push(
      el("p", { class: "muted", "data-testid": "rule-none" }, t("noRule", { fn: rule.grad_fn })),
    );
  else if (rule.message) parts.push(words(rule.message, t));
  return el(
    "div",
    { class: "rule", "data-testid": "rule", "data-grad-fn": rule.grad_fn },
    ...parts,
  );
}

export function meetLine(rule, t) {
  return el(
    "div",
    { class: "rule-meet", "data-testid": "rule-meet" },
    `${t("gradientsMeet", { name: rule.output })}: ${rule.meet.text}`,
  );
}

// The step of pass `pass`, at or before `index`, that ran op `opId`.
export function stepOf(graph, position, opId) {
  if (position?.phase !== "backward") return null;
  const steps = graph.backward[position.pass]?.steps ?? [];
  for (let i = Math.min(position.index, steps.length - 1); i >= 0; i -= 1)
    if (steps[i].node === opId) return steps[i];
  return null;
}
