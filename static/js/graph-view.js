// Draws the server's layout as SVG and shows the player's state on it; zoom, pan, fit.
import { clear, el, svg } from "./dom.js";
import { formatData, shapeText } from "./format.js";

const BADGE_FONT = 14; // px, monospace: about 0.6 em per character
export const SMALLEST_FONT = 14; // px at scale 1: subtitles, badges and frame labels

// The frame shape the server lays graphs out for unless asked for another (app/column_wrap.py).
export const LAYOUT_ASPECT = 2;

// Whether a frame of this width / height is shaped differently enough to want its own layout.
export function wantsOwnLayout(aspect) {
  return (
    Number.isFinite(aspect) &&
    aspect > 0 &&
    Math.abs(Math.log(aspect / LAYOUT_ASPECT)) > Math.log(1.3)
  );
}

// The smallest scale at which the graph's smallest text shows at px on screen.
export function scaleForText(px) {
  return px / SMALLEST_FONT;
}
const BADGE_LINE = 18;
const GROUP_KINDS = new Set(["module", "line", "fold"]); // boxes that open with a click
const FAILED_MARK = "✗ backward()"; // beside the tensor a failed backward pass started from
const BADGE_GAP = 16; // from the box's bottom to the first badge line's baseline
// Which lines of a badge are the gradient (drawn in the gradient colour): from the first "∂" on.
function gradientFrom(lines) {
  const first = lines.findIndex((line) => line.startsWith("∂"));
  return first < 0 ? lines.length : first;
}

export class GraphView {
  constructor(
    container,
    {
      onSelect = () => {},
      onToggleGroup = () => {},
      t = (k) => k,
      minScale = 0.5,
      maxScale = 2,
      reserveRight = 0,
    } = {},
  ) {
    this.container = container;
    this.reserveRight = reserveRight; // room kept free for controls over the graph's right edge
    this.minScale = minScale;
    this.maxScale = maxScale;
    this.onSelect = onSelect;
    this.onToggleGroup = onToggleGroup;
    this.t = t;
    this.transform = { x: 0, y: 0, k: 1 };
    this.elements = new Map(); // layout node id -> <g>
    this.edges = new Map(); // "source|target" (layout ids) -> <path>
    this.selected = null;
    this.root = svg("svg", { class: "graph-svg", role: "group", "aria-label": t("graphLabel") });
    this.viewport = svg("g", { class: "viewport" });
    this.root.append(this.defs(), this.viewport);
    // Said on the frame when the graph cannot fit at a readable size: it follows the step.
    this.notice = el("p", {
      class: "fit-notice",
      "data-testid": "fit-notice",
      "aria-live": "polite",
      hidden: true,
    });
    this.overview = false; // the whole graph, smaller than readable, asked for with the fit button
    container.append(this.root, this.notice);
    // Overlays at the top of the frame (the error banner) keep the graph below them.
    for (const overlay of container.querySelectorAll(":scope > [data-reserve-top]")) {
      new ResizeObserver(() => this.fit()).observe(overlay);
    }
    this.bindPanZoom();
  }

  // The zoom buttons (+, −, fit / whole graph) for views that have no page around them (/embed,
  // HTML exports, notebooks): in their bar when given one, else over the graph's right edge.
  addZoomControls(bar = null) {
    const button = (testid, label, text, action) =>
      el(
        "button",
        {
          type: "button",
          "data-testid": testid,
          "aria-label": this.t(label),
          title: this.t(label),
          onclick: action,
        },
        text,
      );
    const controls = el(
      "div",
      { class: bar ? "zoom in-bar" : "zoom" },
      button("zoom-in", "zoomIn", "+", () => this.zoom(1.25)),
      button("zoom-out", "zoomOut", "−", () => this.zoom(0.8)),
      button("fit", "fit", "⤢", () => this.toggleOverview()),
    );
    if (bar) bar.append(controls);
    else {
      this.container.append(controls);
      this.reserveRight = Math.max(this.reserveRight, 52);
    }
  }

  defs() {
    return svg(
      "defs",
      {},
      svg(
        "marker",
        {
          id: "arrow",
          viewBox: "0 0 10 10",
          refX: "9",
          refY: "5",
          markerWidth: "9",
          markerHeight: "9",
          markerUnits: "userSpaceOnUse",
          orient: "auto",
        },
        svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow-head" }),
      ),
    );
  }

  setGraph(graph, layout) {
    this.graph = graph;
    this.layout = layout;
    this.byId = new Map(graph.nodes.map((n) => [n.id, n]));
    clear(this.viewport);
    this.elements.clear();
    this.edges.clear();
    this.bounds = null;
    if (!layout) return;
    this.root.setAttribute("data-width", layout.width);
    this.bounds = this.contentBounds(graph, layout);
    for (const cluster of layout.clusters) {
      const label = cluster.label;
      const text = cluster.title
        ? this.lineWord(label, cluster.title)
        : `${graph.module_paths?.[label] ?? label}${graph.modules?.[label] ? ` · ${graph.modules[label]}` : ""}`;
      const title = svg(
        "text",
        { x: cluster.x + 10, y: cluster.y + 18, class: "cluster-label" },
        `▾ ${text}`,
      );
      const frame = svg(
        "g",
        { class: "cluster", "data-testid": "cluster", "data-module": label },
        svg("rect", {
          x: cluster.x,
          y: cluster.y,
          width: cluster.width,
          height: cluster.height,
          rx: 10,
        }),
        title,
      );
      frame.addEventListener("click", (event) => {
        if (event.target.classList.contains("cluster-label")) this.onToggleGroup(label);
      });
      this.makeFrameLabelAKey(title, label);
      this.viewport.append(frame);
    }
    const edgeLayer = svg("g", { class: "edges" });
    const accumulators = new Set(
      graph.nodes.filter((n) => n.kind === "op" && n.variable).map((n) => n.id),
    );
    for (const edge of layout.edges) {
      const feedsLeaf = accumulators.has(edge.source); // AccumulateGrad beside its leaf: a plain link
      const path = svg("path", {
        id: `edge-${edge.id}`,
        d: edge.path,
        class: feedsLeaf ? "edge edge-acc" : "edge",
        "marker-end": feedsLeaf ? null : "url(#arrow)",
      });
      this.edges.set(`${edge.source}|${edge.target}`, path);
      edgeLayer.append(path);
    }
    this.viewport.append(edgeLayer);
    this.flowLayer = svg("g", { class: "flows" });
    const nodeLayer = svg("g", { class: "nodes" });
    for (const box of layout.nodes) nodeLayer.append(this.drawNode(box));
    this.viewport.append(nodeLayer, this.flowLayer);
    this.markFailedPass();
  }

  // The frame label of an expanded module collapses it from the keyboard too (Enter, Space).
  makeFrameLabelAKey(title, path) {
    title.setAttribute("tabindex", "0");
    title.setAttribute("role", "button");
    title.setAttribute("aria-label", `${title.textContent.slice(2)} (${this.t("collapse")})`);
    title.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        this.onToggleGroup(path);
      }
    });
  }

  // The tensors a failed backward pass started from, in the error colour with a mark beside them.
  markFailedPass() {
    const error = this.graph?.error;
    if (error?.pass_index === null || error?.pass_index === undefined) return;
    for (const id of new Set((error.roots ?? []).map((root) => this.shown(root)))) {
      const group = this.elements.get(id);
      const box = this.layout.nodes.find((n) => n.id === id);
      if (!group || !box) continue;
      const text = this.t("failedPassMark", { n: error.pass_index + 1 });
      group.classList.add("failed-root");
      group.setAttribute("aria-label", `${box.label}: ✗ ${text}`);
      group.append(
        svg(
          "text",
          {
            x: box.width + 6,
            y: box.height - 6,
            class: "failed-mark",
            "data-testid": "failed-mark",
          },
          FAILED_MARK,
          svg("title", {}, text),
        ),
      );
    }
  }

  // Focus what now stands for a module after a redraw: its box, or the label of its frame.
  focusGroup(path) {
    const frame = [...this.viewport.querySelectorAll(".cluster")].find(
      (g) => g.dataset.module === path,
    );
    const target =
      this.elements.get(`group:${path}`) ??
      frame?.querySelector(".cluster-label") ??
      [...this.elements.values()].find(
        (g) => g.dataset.kind === "module" && path.startsWith(`${g.dataset.nodeId.slice(6)}.`),
      );
    target?.focus({ preventScroll: true });
  }

  drawNode(box) {
    const node = this.byId.get(box.id);
    const kind = node ? node.look : box.kind; // the server says how a graph node looks
    const attrs = {
      class: `node kind-${kind}`,
      "data-testid": "node",
      "data-node-id": box.id,
      "data-kind": box.kind,
      transform: `translate(${box.x},${box.y})`,
      tabindex: "0",
      role: "button",
    };
    if (node?.kind === "tensor" && node.name) attrs["data-name"] = node.name;
    const group = svg("g", attrs);
    const shape =
      box.kind === "op"
        ? svg("rect", { width: box.width, height: box.height, rx: box.height / 2 })
        : svg("rect", {
            width: box.width,
            height: box.height,
            rx: GROUP_KINDS.has(box.kind) ? 4 : 8,
          });
    group.append(shape);
    const [title, subtitle, tip] = this.texts(box, node);
    group.append(
      svg("text", { x: box.width / 2, y: 19, class: "title" }, title),
      svg("text", { x: box.width / 2, y: 37.5, class: "subtitle" }, subtitle),
      svg("title", {}, tip),
    );
    if (
      node
        ? node.kind === "op" && node.failed
        : box.members?.some((id) => this.byId.get(id)?.failed)
    ) {
      group.classList.add("failed");
      group.setAttribute("aria-label", `${box.label} ✗ ${this.t("failedCall")}`);
    }
    if (node?.kind === "tensor" && node.retains_grad && !node.is_leaf) {
      group.classList.add("keeps-grad");
      group.append(
        svg(
          "text",
          { x: box.width + 6, y: 20, class: "keeps-mark", "aria-label": this.t("keepsGrad") },
          ".grad ✓",
        ),
      );
    }
    const badge = svg("g", {
      class: "badge",
      transform: `translate(${box.width / 2},${box.height + BADGE_GAP})`,
    });
    badge.append(svg("text", { class: "badge-text" }));
    group.append(badge);
    const activate = () => {
      if (GROUP_KINDS.has(box.kind)) this.onToggleGroup(box.module);
      else this.onSelect(box.id);
    };
    group.addEventListener("click", activate);
    group.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        activate();
      }
    });
    this.elements.set(box.id, group);
    return group;
  }

  texts(box, node) {
    if (!node) {
      const title =
        box.kind === "line"
          ? `▸ ${this.t("line")} ${box.module?.slice(5) ?? ""}`
          : `▸ ${this.lineWord(box.module ?? "", box.label)}`;
      const parts = [this.t("nodesCount", { n: box.members.length })];
      if (box.parameters) parts.push(this.t("params", { n: box.parameters.toLocaleString("en") }));
      const detail = parts.join(" · ") + (box.shape ? ` → ${shapeText(box.shape)}` : "");
      return [title, detail, `${title.slice(2)}: ${detail} (${this.t("expand")})`];
    }
    if (node.kind === "tensor") {
      const detail = `${node.shape.length ? shapeText(node.shape) : this.t("scalar")} ${node.dtype}`;
      return [
        box.label,
        detail,
        `${node.name ?? node.label} · ${detail} · ${formatData(node.value, 6)}`,
      ];
    }
    if (node.failed) return [box.label, box.detail, `${node.op} ✗ ${this.t("failedCall")}`];
    return [
      box.label,
      box.detail,
      `${node.op} · ${node.grad_fn ?? ""}${node.module ? ` · ${node.module}` : ""}`,
    ];
  }

  // A source line's group or fold ('line 9 × 50', 'line 9#2') with "line" in the reader's language.
  lineWord(path, text) {
    return path.startsWith("line:") || path.startsWith("fold:line:")
      ? `${this.t("line")} ${text.slice(5)}`
      : text;
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
      const text = state.badges?.get(id) ?? "";
      group.classList.toggle("has-grad", text.includes("∂"));
      if (badge.dataset.text !== text) {
        badge.dataset.text = text;
        const lines = text ? text.split("\n") : []; // the server breaks badges into lines
        const gradient = gradientFrom(lines);
        badge.replaceChildren(
          ...lines.map((line, i) =>
            svg(
              "tspan",
              { x: 0, dy: i ? BADGE_LINE : 0, class: i >= gradient ? "grad-line" : "value-line" },
              line,
            ),
          ),
        );
        // an error badge quotes torch's own message, in English whatever the page's language
        if (text.startsWith("✗")) badge.setAttribute("lang", "en");
        else badge.removeAttribute("lang");
      }
    }
    for (const path of this.edges.values()) path.classList.remove("is-flow");
    clear(this.flowLayer);
    for (const flow of state.flows) this.showFlow(flow);
  }

  showFlow(flow) {
    const from = this.shown(flow.from);
    const hops = flow.tensor
      ? [
          [this.shown(flow.tensor), from],
          [this.shown(flow.to), this.shown(flow.tensor)],
        ]
      : [[this.shown(flow.to), from]];
    for (const [source, target] of hops) {
      const path = this.edges.get(`${source}|${target}`) ?? this.edges.get(`${target}|${source}`);
      if (!path) continue;
      path.classList.add("is-flow");
      const dot = svg("circle", { r: 5, class: "grad-dot" });
      dot.append(
        svg("animateMotion", {
          dur: "0.6s",
          fill: "freeze",
          keyPoints: "1;0",
          keyTimes: "0;1",
          calcMode: "linear",
          path: path.getAttribute("d"),
        }),
      );
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

  // Boxes, cluster frames and the widest badge any step puts under each box, as the server
  // measured it (app/badges.py widest_badges: a value over its gradient, their lines added up).
  contentBounds(graph, layout) {
    const sizes = graph.badges?.sizes ?? {};
    const y0 = 0;
    let x0 = 0,
      x1 = layout.width,
      y1 = layout.height;
    for (const box of layout.nodes) {
      const badge = sizes[box.id];
      if (!badge) continue;
      const cx = box.x + box.width / 2;
      const width = badge.chars * BADGE_FONT * 0.62;
      x0 = Math.min(x0, cx - width / 2);
      x1 = Math.max(x1, cx + width / 2);
      y1 = Math.max(y1, box.y + box.height + BADGE_GAP + (badge.lines - 1) * BADGE_LINE + 6);
    }
    if (graph.error?.pass_index !== null && graph.error?.pass_index !== undefined) {
      for (const root of graph.error.roots ?? []) {
        // the "✗ backward()" mark beside the box
        const box = layout.nodes.find((n) => n.id === (layout.node_of?.[root] ?? root));
        if (box) x1 = Math.max(x1, box.x + box.width + 6 + FAILED_MARK.length * BADGE_FONT * 0.62);
      }
    }
    return { x0, y0, x1, y1 };
  }

  // Fit the whole graph; never below minScale (text stays readable), then the view follows the
  // step and the frame says so. In the overview (asked for) the whole graph shows at any scale.
  fit() {
    if (!this.layout || !this.bounds) return;
    const rect = this.container.getBoundingClientRect();
    if (!rect.width || !rect.height) return;
    const pad = 6;
    const { x0, y0, x1, y1 } = this.bounds;
    const room = rect.width - this.reserveRight;
    const top = this.reservedTop();
    const height = rect.height - top;
    const k = Math.min(this.maxScale, (room - pad * 2) / (x1 - x0), (height - pad * 2) / (y1 - y0));
    this.fits = k >= this.minScale - 1e-9;
    if (this.fits) this.overview = false;
    const whole = this.fits || this.overview;
    const scale = whole ? k : this.minScale;
    this.root.dataset.fits = String(this.fits);
    this.root.dataset.overview = String(this.overview);
    this.transform = {
      k: scale,
      x: whole ? (room - (x1 + x0) * scale) / 2 : pad - x0 * scale,
      y: top + (whole ? (height - (y1 + y0) * scale) / 2 : pad - y0 * scale),
    };
    this.apply();
    this.notice.hidden = this.fits;
    this.notice.textContent = this.fits
      ? ""
      : this.t(this.overview ? "overviewNotice" : "followNotice");
    if (!whole && this.lastCurrent) this.follow(this.lastCurrent, true);
  }

  // Width / height of the room the graph is drawn in.
  frameAspect() {
    const rect = this.container.getBoundingClientRect();
    return (rect.width - this.reserveRight) / Math.max(1, rect.height - this.reservedTop());
  }

  // Height at the top of the frame that shown overlays cover.
  reservedTop() {
    let bottom = 0;
    for (const overlay of this.container.querySelectorAll(":scope > [data-reserve-top]")) {
      if (!overlay.hidden) bottom = Math.max(bottom, overlay.offsetTop + overlay.offsetHeight);
    }
    return bottom;
  }

  // The fit button: the whole graph, or back to readable text following the step.
  toggleOverview() {
    this.overview = !this.fits && !this.overview;
    this.fit();
  }

  // Keep the current step's boxes in view when the graph is larger than the frame.
  follow(current, force = false) {
    this.lastCurrent = current;
    if (!force && (this.fits || this.overview)) return; // all of it is in view already
    if (!this.layout || !current?.size) return;
    const boxes = [...new Set([...current].map((id) => this.shown(id)))]
      .map((id) => this.layout.nodes.find((n) => n.id === id))
      .filter(Boolean);
    if (!boxes.length) return;
    const rect = this.container.getBoundingClientRect();
    const { x, y, k } = this.transform;
    const left = Math.min(...boxes.map((b) => b.x)) * k + x;
    const right = Math.max(...boxes.map((b) => b.x + b.width)) * k + x;
    const top = Math.min(...boxes.map((b) => b.y)) * k + y;
    const bottom = Math.max(...boxes.map((b) => b.y + b.height + BADGE_GAP + BADGE_LINE)) * k + y;
    const margin = 24;
    const reserved = this.reservedTop();
    if (
      left >= margin &&
      right <= rect.width - margin &&
      top >= margin + reserved &&
      bottom <= rect.height - margin
    )
      return;
    const wanted = {
      x:
        right - left > rect.width - 2 * margin
          ? x + margin - left
          : x + rect.width / 2 - (left + right) / 2,
      y:
        bottom - top > rect.height - reserved - 2 * margin
          ? y + margin + reserved - top
          : y + (rect.height + reserved) / 2 - (top + bottom) / 2,
    };
    // no empty room beyond the graph's edges when the graph is larger than the frame
    const clamp = (value, low, high) =>
      low > high ? (low + high) / 2 : Math.min(high, Math.max(low, value));
    const { x0, y0, x1, y1 } = this.bounds ?? {
      x0: 0,
      y0: 0,
      x1: this.layout.width,
      y1: this.layout.height,
    };
    this.transform = {
      k,
      x: clamp(wanted.x, rect.width - margin - x1 * k, margin - x0 * k),
      y: clamp(wanted.y, rect.height - margin - y1 * k, margin + reserved - y0 * k),
    };
    this.apply();
  }

  // Zoom about a point, by default the selected or current box rather than the canvas centre.
  zoom(factor, cx, cy) {
    const rect = this.container.getBoundingClientRect();
    const focus =
      this.elements.get(this.selected) ??
      [...this.elements.values()].find((g) => g.classList.contains("is-current"));
    let px = cx ?? rect.width / 2;
    let py = cy ?? rect.height / 2;
    if (cx === undefined && focus) {
      const box = focus.getBoundingClientRect();
      px = box.left + box.width / 2 - rect.left;
      py = box.top + box.height / 2 - rect.top;
    }
    this.fits = false; // zoomed by hand: from now on the view follows the step
    this.overview = false;
    const k = Math.min(8, Math.max(0.03, this.transform.k * factor));
    const ratio = k / this.transform.k;
    this.transform = {
      k,
      x: px - (px - this.transform.x) * ratio,
      y: py - (py - this.transform.y) * ratio,
    };
    this.apply();
  }

  bindPanZoom() {
    // Ctrl+wheel (and a touchpad's pinch, which arrives as one) zooms; a plain wheel scrolls the page.
    this.root.addEventListener(
      "wheel",
      (event) => {
        if (!event.ctrlKey && !event.metaKey) return;
        event.preventDefault();
        const rect = this.container.getBoundingClientRect();
        this.zoom(
          Math.exp(-event.deltaY * 0.0015),
          event.clientX - rect.left,
          event.clientY - rect.top,
        );
      },
      { passive: false },
    );
    let drag = null;
    this.root.addEventListener("pointerdown", (event) => {
      if (event.target.closest(".node, .cluster-label")) return;
      drag = { x: event.clientX, y: event.clientY, start: { ...this.transform } };
      this.root.setPointerCapture(event.pointerId);
    });
    this.root.addEventListener("pointermove", (event) => {
      if (!drag) return;
      this.transform = {
        ...drag.start,
        x: drag.start.x + event.clientX - drag.x,
        y: drag.start.y + event.clientY - drag.y,
      };
      this.apply();
    });
    this.root.addEventListener("pointerup", () => {
      drag = null;
    });
  }
}
