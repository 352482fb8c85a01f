// Draws the server's layout as SVG and shows the player's state on it; zoom, pan, fit.
import { clear, svg } from "./dom.js";
import { formatData } from "./format.js";

export function tensorKind(node) {
  if (node.kind !== "tensor") return node.grad_fn === "AccumulateGrad" ? "acc" : "op";
  if (!node.is_leaf) return "tensor";
  if (!node.requires_grad) return "const";
  return node.is_parameter ? "param" : "leaf";
}

// "∂ 2 + 3 = 5 → .grad 5": the contributions that met, their sum, and the leaf's .grad.
export function gradText(grad) {
  const parts = grad.parts.map((p) => formatData(p, 2));
  const total = grad.total ? formatData(grad.total, 2) : null;
  let text = "∂ ";
  if (parts.length > 1) text += `${parts.join(" + ")}${total ? ` = ${total}` : ""}`;
  else text += total ?? parts[0] ?? "";
  if (grad.accumulated) text += ` → .grad ${formatData(grad.accumulated, 2)}`;
  return text;
}

export class GraphView {
  constructor(container, { onSelect = () => {}, onToggleGroup = () => {}, t = (k) => k } = {}) {
    this.container = container;
    this.onSelect = onSelect;
    this.onToggleGroup = onToggleGroup;
    this.t = t;
    this.transform = { x: 0, y: 0, k: 1 };
    this.elements = new Map(); // layout node id -> <g>
    this.edges = new Map(); // "source|target" (layout ids) -> <path>
    this.selected = null;
    this.root = svg("svg", { class: "graph-svg", role: "img", "aria-label": "autograd graph" });
    this.viewport = svg("g", { class: "viewport" });
    this.root.append(this.defs(), this.viewport);
    container.append(this.root);
    this.bindPanZoom();
  }

  defs() {
    return svg("defs", {},
      svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "9", markerHeight: "9", markerUnits: "userSpaceOnUse", orient: "auto" },
        svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow-head" })));
  }

  setGraph(graph, layout) {
    this.graph = graph;
    this.layout = layout;
    this.byId = new Map(graph.nodes.map((n) => [n.id, n]));
    clear(this.viewport);
    this.elements.clear();
    this.edges.clear();
    if (!layout) return;
    this.root.setAttribute("data-width", layout.width);
    for (const cluster of layout.clusters) {
      const label = cluster.label;
      const frame = svg("g", { class: "cluster", "data-testid": "cluster", "data-module": label },
        svg("rect", { x: cluster.x, y: cluster.y, width: cluster.width, height: cluster.height, rx: 10 }),
        svg("text", { x: cluster.x + 10, y: cluster.y + 16, class: "cluster-label" }, `▾ ${label}`));
      frame.addEventListener("click", (event) => {
        if (event.target.classList.contains("cluster-label")) this.onToggleGroup(label);
      });
      this.viewport.append(frame);
    }
    const edgeLayer = svg("g", { class: "edges" });
    const accumulators = new Set(graph.nodes.filter((n) => n.kind === "op" && n.variable).map((n) => n.id));
    for (const edge of layout.edges) {
      const feedsLeaf = accumulators.has(edge.source); // AccumulateGrad beside its leaf: a plain link
      const path = svg("path", { id: `edge-${edge.id}`, d: edge.path, class: feedsLeaf ? "edge edge-acc" : "edge", "marker-end": feedsLeaf ? null : "url(#arrow)" });
      this.edges.set(`${edge.source}|${edge.target}`, path);
      edgeLayer.append(path);
    }
    this.viewport.append(edgeLayer);
    this.flowLayer = svg("g", { class: "flows" });
    const nodeLayer = svg("g", { class: "nodes" });
    for (const box of layout.nodes) nodeLayer.append(this.drawNode(box));
    this.viewport.append(nodeLayer, this.flowLayer);
  }

  drawNode(box) {
    const node = this.byId.get(box.id);
    const kind = node ? tensorKind(node) : box.kind;
    const attrs = {
      class: `node kind-${kind}`, "data-testid": "node", "data-node-id": box.id, "data-kind": box.kind,
      transform: `translate(${box.x},${box.y})`, tabindex: "0", role: "button",
    };
    if (node?.kind === "tensor" && node.name) attrs["data-name"] = node.name;
    const group = svg("g", attrs);
    const shape = box.kind === "op"
      ? svg("rect", { width: box.width, height: box.height, rx: box.height / 2 })
      : svg("rect", { width: box.width, height: box.height, rx: box.kind === "module" || box.kind === "line" ? 4 : 8 });
    group.append(shape);
    const [title, subtitle, tip] = this.texts(box, node);
    group.append(
      svg("text", { x: box.width / 2, y: 19, class: "title" }, title),
      svg("text", { x: box.width / 2, y: 36, class: "subtitle" }, subtitle),
      svg("title", {}, tip),
    );
    const badge = svg("g", { class: "badge", transform: `translate(${box.width / 2},${box.height + 13})` });
    badge.append(svg("text", { class: "badge-text" }));
    group.append(badge);
    const activate = () => {
      if (box.kind === "module" || box.kind === "line") this.onToggleGroup(box.module);
      else this.onSelect(box.id);
    };
    group.addEventListener("click", activate);
    group.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); activate(); }
    });
    this.elements.set(box.id, group);
    return group;
  }

  texts(box, node) {
    if (!node) return [`▸ ${box.label}`, box.detail, `${box.label}: ${box.detail} (${this.t("expand")})`];
    if (node.kind === "tensor") return [box.label, box.detail, `${node.name ?? node.label} · ${box.detail} · ${formatData(node.value, 6)}`];
    return [box.label, box.detail, `${node.op} · ${node.grad_fn ?? ""}${node.module ? ` · ${node.module}` : ""}`];
  }

  // The layout node that shows a graph node (itself, or the collapsed group around it).
  shown(id) {
    return this.layout?.node_of[id] ?? id;
  }

  setState(state) {
    const unitOf = (id) => this.shown(id);
    const activeUnits = new Set([...state.active].map(unitOf));
    const currentUnits = new Set([...state.current].map(unitOf));
    const ranUnits = new Set([...state.ranOps].map(unitOf));
    for (const [id, group] of this.elements) {
      group.classList.toggle("is-active", activeUnits.has(id));
      group.classList.toggle("is-current", currentUnits.has(id));
      group.classList.toggle("is-ran", ranUnits.has(id));
      group.classList.toggle("is-selected", id === this.selected);
      const badge = group.querySelector(".badge-text");
      const grad = state.grads.get(id);
      const value = state.values.get(id);
      group.classList.toggle("has-grad", Boolean(grad));
      if (grad) badge.textContent = gradText(grad);
      else if (value && state.position?.phase === "forward" && state.current.has(id)) badge.textContent = `= ${formatData(value)}`;
      else badge.textContent = "";
    }
    for (const path of this.edges.values()) path.classList.remove("is-flow");
    clear(this.flowLayer);
    for (const flow of state.flows) this.showFlow(flow);
  }

  showFlow(flow) {
    const from = this.shown(flow.from);
    const hops = flow.tensor ? [[this.shown(flow.tensor), from], [this.shown(flow.to), this.shown(flow.tensor)]] : [[this.shown(flow.to), from]];
    for (const [source, target] of hops) {
      const path = this.edges.get(`${source}|${target}`) ?? this.edges.get(`${target}|${source}`);
      if (!path) continue;
      path.classList.add("is-flow");
      const dot = svg("circle", { r: 5, class: "grad-dot" });
      dot.append(svg("animateMotion", { dur: "0.6s", fill: "freeze", keyPoints: "1;0", keyTimes: "0;1", calcMode: "linear", path: path.getAttribute("d") }));
      this.flowLayer.append(dot);
    }
  }

  select(id) {
    this.selected = id;
    for (const [key, group] of this.elements) group.classList.toggle("is-selected", key === id);
  }

  // ----- zoom and pan -----
  apply() {
    const { x, y, k } = this.transform;
    this.viewport.setAttribute("transform", `translate(${x},${y}) scale(${k})`);
    this.root.dataset.scale = k.toFixed(3);
  }

  fit() {
    if (!this.layout) return;
    const rect = this.container.getBoundingClientRect();
    const pad = 24;
    const badgeRoom = 110; // value and gradient badges reach past the boxes
    const width = this.layout.width + badgeRoom;
    const k = Math.min(2, (rect.width - pad * 2) / width, (rect.height - pad * 2) / (this.layout.height + 24));
    const scale = Math.max(0.05, k);
    this.transform = { k: scale, x: (rect.width - this.layout.width * scale) / 2, y: pad };
    this.apply();
  }

  zoom(factor, cx, cy) {
    const rect = this.container.getBoundingClientRect();
    const px = cx ?? rect.width / 2;
    const py = cy ?? rect.height / 2;
    const k = Math.min(8, Math.max(0.03, this.transform.k * factor));
    const ratio = k / this.transform.k;
    this.transform = { k, x: px - (px - this.transform.x) * ratio, y: py - (py - this.transform.y) * ratio };
    this.apply();
  }

  bindPanZoom() {
    this.root.addEventListener("wheel", (event) => {
      event.preventDefault();
      const rect = this.container.getBoundingClientRect();
      this.zoom(Math.exp(-event.deltaY * 0.0015), event.clientX - rect.left, event.clientY - rect.top);
    }, { passive: false });
    let drag = null;
    this.root.addEventListener("pointerdown", (event) => {
      if (event.target.closest(".node, .cluster-label")) return;
      drag = { x: event.clientX, y: event.clientY, start: { ...this.transform } };
      this.root.setPointerCapture(event.pointerId);
    });
    this.root.addEventListener("pointermove", (event) => {
      if (!drag) return;
      this.transform = { ...drag.start, x: drag.start.x + event.clientX - drag.x, y: drag.start.y + event.clientY - drag.y };
      this.apply();
    });
    this.root.addEventListener("pointerup", () => { drag = null; });
  }
}
