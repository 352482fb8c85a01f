// The explorer page: wires the editor, gallery, graph view, player and inspector together.
import * as api from "./api.js";
import { el, clear } from "./dom.js";
import { describeDevices } from "./devices.js";
import { createEditor } from "./editor.js";
import { GraphView, LAYOUT_ASPECT, scaleForText, wantsOwnLayout } from "./graph-view.js";
import {
  createTranslator,
  preferredLanguage,
  rememberLanguage,
  storage,
  translatePage,
} from "./i18n.js";
import { renderInspector } from "./inspector.js";
import { Player } from "./player.js";
import { seriesChart } from "./charts.js";
import { noteTexts } from "./notes.js";
import { errorText } from "./torch-messages.js";
import { failedInBackward, pathsToOpen, showErrorBanner } from "./error-banner.js"; // issue 18
import { trainingSeries } from "./series.js";
import {
  downloadName,
  formatStep,
  parseStep,
  pushState,
  readState,
  stateToQuery,
  writeState,
} from "./state.js";
import { Timeline } from "./timeline.js";
import { Caption } from "./caption.js"; // chain rule (issue 10)
import { createLiveMode, isSmallProgram, sameShape } from "./live.js"; // live mode (issue 10)

const $ = (id) => document.getElementById(id);

// Graph text on screen: at least 12 px on a laptop's page (14 px in Present mode); a phone shows
// the whole graph smaller, for the reader to pinch.
function pageMinScale() {
  return matchMedia("(max-width: 760px)").matches ? 0.5 : scaleForText(12);
}
const THEME_KEY = "autograd-explorer.theme";

class Explorer {
  constructor() {
    const url = readState();
    this.lang = url.lang ?? preferredLanguage();
    this.t = createTranslator(this.lang);
    this.url = url;
    this.graph = null;
    this.timeline = null;
    this.layout = null;
    this.expanded = url.expanded ?? [];
    this.selected = url.select ?? null;
    this.position = null;
    this.pass = 0;
    this.request = null;
    this.editor = createEditor($("editor"), {
      onRun: () => this.run(),
      onChange: () => {
        this.sync();
        this.live.changed();
      },
      label: this.t("program"),
      onEscape: () => $("graph").focus(), // Esc: the arrows step the player again
    });
    // chain rule caption and live mode (issue 10)
    this.caption = new Caption($("caption"));
    this.lesson = null; // {code, captions} of the gallery entry in the editor
    this.live = createLiveMode({ toggle: $("live"), run: () => this.run({ live: true }) });
    this.view = new GraphView($("graph"), {
      t: this.t,
      reserveRight: 56, // the zoom buttons
      minScale: pageMinScale(),
      onSelect: (id) => this.select(id),
      onToggleGroup: (path) => this.toggleGroup(path),
    });
    this.player = new Player($("player"), {
      t: this.t,
      onPosition: (position) => this.show(position),
      onPass: (pass) => this.choosePass(pass),
    });
    this.bindControls();
    this.applyTheme(
      storage()?.getItem(THEME_KEY) ??
        (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light"),
    );
  }

  bindControls() {
    $("run").addEventListener("click", () => this.run());
    $("cancel").addEventListener("click", () => this.request?.abort());
    $("device").addEventListener("change", () => this.sync());
    $("lang").addEventListener("change", () => this.setLanguage($("lang").value));
    $("theme").addEventListener("click", () =>
      this.applyTheme(document.documentElement.dataset.theme === "dark" ? "light" : "dark"),
    );
    $("zoom-in").addEventListener("click", () => this.view.zoom(1.25));
    $("zoom-out").addEventListener("click", () => this.view.zoom(0.8));
    $("fit").addEventListener("click", () => this.view.toggleOverview());
    $("expand-all").addEventListener("click", () => this.expandTo(["*"]));
    $("collapse-all").addEventListener("click", () => this.expandTo([]));
    $("depth").addEventListener("change", () => {
      const depth = $("depth").value;
      $("depth").value = ""; // the picker names a click, not a state: the same depth can be asked again
      if (depth !== "") this.expandTo([], Number(depth));
    });
    $("present").addEventListener("click", () =>
      this.present(!document.body.classList.contains("presenting")),
    );
    // Only one menu open at a time, so Download and Embed never overlap.
    for (const menu of document.querySelectorAll("details.menu")) {
      menu.addEventListener("toggle", () => {
        if (!menu.open) return;
        for (const other of document.querySelectorAll("details.menu"))
          if (other !== menu) other.open = false;
      });
    }
    window.addEventListener("popstate", () => this.restore());
    document.addEventListener("keydown", (event) => {
      if (
        event.key === "Escape" &&
        document.body.classList.contains("presenting") &&
        !event.target.closest?.(".cm-editor")
      )
        this.present(false);
    });
    $("copy-link").addEventListener("click", async () => {
      this.sync();
      $("copy-link").dataset.href = location.href;
      const copied =
        navigator.clipboard?.writeText(location.href).then(
          () => true,
          () => false,
        ) ?? Promise.resolve(false);
      const done = await Promise.race([
        copied,
        new Promise((resolve) => setTimeout(() => resolve(false), 1000)),
      ]);
      if (done) this.say("copied");
      else this.status(location.href);
    });
    new ResizeObserver(() => this.view.fit()).observe($("graph"));
  }

  applyTheme(theme) {
    document.documentElement.dataset.theme = theme;
    storage()?.setItem(THEME_KEY, theme);
  }

  async start() {
    $("lang").value = this.lang;
    translatePage(document, this.t, this.lang);
    this.examples = await api.listExamples();
    if (this.url.device) $("device").value = this.url.device;
    await describeDevices($("device"), { noCuda: this.t("noCuda") });
    let code = this.url.code;
    if (!code) {
      const id = this.url.example ?? document.body.dataset.defaultExample;
      const example = await api.getExample(id);
      code = example.code;
      this.lesson = { code, captions: example.captions ?? {} };
      this.example = id;
    } else {
      this.example = this.url.example ?? null;
      // a shared link to a lesson keeps its narration while the code is the lesson's (issue 10)
      const example = this.example ? await api.getExample(this.example).catch(() => null) : null;
      if (example) this.lesson = { code: example.code, captions: example.captions ?? {} };
    }
    this.renderGallery();
    this.editor.setCode(code);
    await this.run({ step: parseStep(this.url.step) });
  }

  // Back and Forward: show the run or lesson that the history entry recorded.
  async restore() {
    const url = readState();
    if (url.lang && url.lang !== this.lang) this.setLanguage(url.lang);
    const example = url.example ? await api.getExample(url.example).catch(() => null) : null;
    const code = url.code ?? example?.code ?? null;
    if (code === null) return;
    this.live.cancel();
    this.example = url.example ?? null;
    this.lesson = example ? { code: example.code, captions: example.captions ?? {} } : null;
    this.expanded = url.expanded ?? [];
    this.selected = url.select ?? null;
    this.renderGallery();
    this.editor.setCode(code);
    await this.run({ step: parseStep(url.step), remember: false });
  }

  present(on) {
    document.body.classList.toggle("presenting", on);
    $("present").setAttribute("aria-pressed", String(on));
    this.view.minScale = on ? scaleForText(14) : pageMinScale();
    this.view.maxScale = on ? 3 : 2;
    this.view.fit();
  }

  renderGallery() {
    const list = $("gallery");
    clear(list);
    for (const example of this.examples) {
      const title = this.lang === "zh" ? example.title_zh : example.title_en;
      const current = example.id === this.example;
      list.append(
        el(
          "li",
          {},
          el(
            "button",
            {
              type: "button",
              class: current ? "is-current" : "",
              "data-example": example.id,
              "aria-current": current ? "true" : null,
              title: this.lessonOf(example),
              onclick: () => this.loadExample(example.id),
            },
            title,
          ),
        ),
      );
    }
    this.renderLesson();
  }

  lessonOf(example) {
    return (this.lang === "zh" ? example.lesson_zh : example.lesson) || example.lesson;
  }

  // One sentence above the graph that says what the lesson shows, while its code is shown
  // (an edited program no longer shows what the sentence says).
  renderLesson() {
    const unchanged = this.lesson && (this.code === undefined || this.lesson.code === this.code);
    const example = unchanged ? this.examples?.find((e) => e.id === this.example) : null;
    $("lesson").textContent = example ? this.lessonOf(example) : "";
    $("lesson-bar").hidden = !example;
  }

  async loadExample(id) {
    this.example = id;
    this.expanded = [];
    this.selected = null;
    const example = await api.getExample(id);
    this.lesson = { code: example.code, captions: example.captions ?? {} };
    this.live.cancel();
    this.editor.setCode(example.code);
    this.renderGallery();
    await this.run();
  }

  status(text) {
    this.statusMessage = null;
    $("status").textContent = text;
  }

  // A status line said in the page's language, said again when the language changes.
  say(key, vars = {}) {
    this.status(this.t(key, vars));
    this.statusMessage = { key, vars };
  }

  async run({ step = null, live = false, remember = !live } = {}) {
    if (!live) this.live.cancel();
    this.request?.abort();
    const controller = new AbortController();
    this.request = controller;
    const started = performance.now();
    $("cancel").hidden = false;
    document.body.dataset.busy = "true";
    const timer = setInterval(
      () =>
        this.status(this.t("running", { s: ((performance.now() - started) / 1000).toFixed(1) })),
      100,
    );
    this.status(this.t("running", { s: "0.0" }));
    const code = this.editor.getCode();
    const device = $("device").value;
    try {
      const graph = await api.trace({ code, device }, controller.signal);
      if (live && graph.error?.type === "SyntaxError" && this.graph) {
        // half-typed code: keep the last graph, point at the line
        this.editor.markError(graph.error.line);
        this.showError(errorText(graph.error, this.t));
        this.status("");
        return;
      }
      if (live && sameShape(this.graph, graph)) step = this.position; // keep the step
      this.device = device;
      if (
        remember &&
        this.code !== undefined &&
        (code !== this.code || this.example !== this.shownExample)
      )
        pushState(this.viewState());
      this.code = code;
      this.shownExample = this.example;
      await this.showGraph(graph, step);
      if (graph.error && !live) this.revealError();
      this.live.suggest(isSmallProgram(code, graph));
      this.say("done", { nodes: graph.nodes.length, passes: graph.backward.length });
    } catch (error) {
      if (error.name === "AbortError") this.status("");
      else this.showFailure(error);
    } finally {
      clearInterval(timer);
      if (this.request === controller) {
        this.request = null;
        $("cancel").hidden = true;
        document.body.dataset.busy = "false";
      }
    }
  }

  showFailure(error) {
    const detail = error.detail ?? {};
    let text;
    if (error.status === 400 && detail.type === "PolicyError") {
      text = this.t("refused", { line: detail.line ?? "?", message: detail.message });
      this.editor.markError(detail.line ?? null);
    } else if (error.status === 422 && detail.type === "LimitExceeded") {
      text = this.t("limit", { limit: detail.limit, message: detail.message });
    } else if (error.status === 503 || error.status === 429) {
      text = this.t("busy", { s: error.retryAfter ?? 2 });
    } else {
      text = this.t("failed", { message: detail.message ?? error.message });
    }
    this.showError(text);
    this.status("");
  }

  // An error of a run the reader asked for is brought into view where the page had scrolled away
  // from the graph (a narrow screen, where the editor sits below the gallery).
  revealError() {
    const box = $("error");
    if (!box.hidden) box.scrollIntoView({ block: "nearest", inline: "nearest" });
  }

  showError(text) {
    document.body.dataset.failures = String(
      Number(document.body.dataset.failures ?? 0) + (text ? 1 : 0),
    );
    showErrorBanner($("error"), text, this.t);
  }

  async showGraph(graph, step) {
    performance.mark("graph-received");
    this.graph = graph;
    this.timeline = new Timeline(graph);
    this.player.setPositions([], 0); // no step of the last graph plays while this one is laid out
    this.layout = graph.layout;
    this.editor.markError(null);
    this.showError(null);
    // a failure opens at the pass it followed, where its ghost op is drawn (or the pass that raised)
    const failedLate = graph.error?.node || failedInBackward(graph.error);
    const opening = step ? step.pass : failedLate ? graph.backward.length - 1 : 0;
    this.pass = Math.min(Math.max(0, opening ?? 0), Math.max(0, graph.backward.length - 1));
    const chosen = this.expanded;
    if (!step) this.expanded = pathsToOpen(graph, chosen); // the module around the call that raised
    this.layout = await this.layoutFor(this.pass);
    if (this.expanded !== chosen && this.layout === graph.layout) this.expanded = chosen; // could not be laid out
    this.view.setGraph(graph, this.layout);
    if (graph.error) {
      this.editor.markError(graph.error.line);
      this.showError(errorText(graph.error, this.t, graph));
    }
    $("stdout").textContent = graph.stdout;
    this.renderNotes();
    this.renderLesson();
    this.renderSeries();
    this.player.setPasses(graph.backward, this.pass);
    const positions = this.timeline.positions(this.pass, this.layout);
    let index = 0;
    if (step) {
      // the first position that reaches the step (steps inside a collapsed module play as one)
      const found = positions.findIndex(
        (p) =>
          p.phase === step.phase &&
          p.index >= step.index &&
          (p.phase === "forward" || p.pass === step.pass),
      );
      if (found >= 0) index = found;
    } else if (graph.error) {
      const ghost = positions.findIndex(
        (p) => p.phase === "forward" && graph.forward[p.index]?.node === graph.error.node,
      );
      index =
        ghost >= 0
          ? ghost
          : Math.max(
              0,
              positions.findLastIndex((p) => p.phase === "forward"),
            );
      if (failedInBackward(graph.error)) index = positions.length - 1; // the end of the last pass that ran
    }
    if (this.selected && !this.timeline.byId.has(this.selected)) this.selected = null;
    this.view.select(this.selected);
    this.showSidePanel();
    $("hint").hidden = Boolean(step) || !positions.length || index > 0; // an error opens at its call
    this.startIndex = index;
    if (positions.length) this.player.setPositions(positions, index);
    else this.show(null);
    this.view.fit();
    performance.mark("graph-drawn");
    performance.measure("draw", "graph-received", "graph-drawn");
    document.body.dataset.shown = String(Number(document.body.dataset.shown ?? 0) + 1);
  }

  renderNotes() {
    const graph = this.graph;
    if (!graph) return;
    const notes = noteTexts(graph, this.t);
    if (graph.truncated)
      notes.push(
        this.t("truncated", {
          r: graph.truncated.passes_recorded,
          t: graph.truncated.passes_total,
        }),
      );
    // what the view says of itself: an expansion too big to lay out, shown folded
    notes.push(...noteTexts({ messages: this.layout?.messages ?? [], notes: [] }, this.t));
    $("notes").replaceChildren(...notes.map((n) => el("li", {}, n)));
  }

  // A plot only for programs that train in a loop (three or more backward passes).
  renderSeries() {
    const plotted = trainingSeries(this.graph).filter((s) => s.values.length >= 3);
    $("series-panel").hidden = !plotted.length;
    this.showSidePanel();
    this.chart?.plot.destroy();
    this.chart = plotted.length
      ? seriesChart(plotted, { width: Math.max(240, $("series").clientWidth || 300), t: this.t })
      : null;
    $("series").replaceChildren(...(this.chart ? [this.chart.element] : []));
  }

  // The layout that draws a pass: one iteration of a training loop, or the whole graph.
  async layoutFor(pass) {
    const graph = this.graph;
    const perPass =
      graph.layout && graph.layout.pass_index !== null && graph.layout.pass_index !== undefined;
    // a frame far from the usual wide shape (a phone held upright) gets a layout made for it
    const aspect = this.view.frameAspect();
    const own = Boolean(graph.layout) && wantsOwnLayout(aspect);
    const depth = this.depth ?? null;
    if (
      !own &&
      !this.expanded.length &&
      depth === null &&
      (!perPass || graph.layout.pass_index === pass)
    )
      return graph.layout;
    const request = {
      code: this.code,
      device: this.device,
      expanded: this.expanded,
      depth,
      pass: perPass ? pass : null,
      aspect: own ? aspect : LAYOUT_ASPECT,
    };
    return api.layout(request).catch((error) => {
      this.showFailure(error);
      return graph.layout;
    });
  }

  async choosePass(pass) {
    this.pass = pass;
    this.layout = await this.layoutFor(pass);
    this.view.setGraph(this.graph, this.layout);
    this.view.select(this.selected);
    const positions = this.timeline.positions(pass, this.layout);
    this.player.setPositions(
      positions,
      positions.findIndex((p) => p.phase === "backward"),
    );
    this.view.fit();
  }

  show(position) {
    this.position = position;
    if (!this.timeline) return;
    const state = this.timeline.state(position);
    this.state = state;
    this.view.setState(state);
    this.view.follow(state.current);
    this.editor.highlightLine(state.line);
    if (this.startIndex !== undefined && this.player.index !== this.startIndex)
      $("hint").hidden = true;
    this.renderInspector();
    this.showCaption();
    this.sync();
  }

  showCaption() {
    const narration = this.lesson && this.lesson.code === this.code ? this.lesson.captions : null;
    this.caption.show({
      graph: this.graph,
      position: this.position,
      narration,
      lang: this.lang,
      t: this.t,
    });
  }

  renderInspector() {
    if (!this.timeline) return;
    renderInspector($("inspector"), {
      graph: this.graph,
      timeline: this.timeline,
      state: this.state ?? this.timeline.state(null),
      nodeId: this.selected,
      t: this.t,
      onSelect: (id) => this.select(id),
    });
  }

  select(id) {
    this.selected = id;
    this.view.select(id);
    this.renderInspector();
    this.showSidePanel();
    this.sync();
  }

  // The inspector's column takes room from the graph only while it shows something.
  showSidePanel() {
    document.body.classList.toggle(
      "has-inspector",
      Boolean(this.selected) || !$("series-panel").hidden,
    );
  }

  async toggleGroup(path) {
    if (!path || !this.graph) return;
    // Enter on a module box: focus stays on what stands for the module once the graph is redrawn
    const hadFocus = $("graph").contains(document.activeElement);
    const open = this.expanded.includes(path);
    this.expanded = open
      ? this.expanded.filter((p) => p !== path && !p.startsWith(`${path}.`))
      : [...this.expanded, path];
    await this.relayout();
    if (hadFocus) this.view.focusGroup(path);
  }

  // Expand every group ("*"), none ([]), or every group down to a depth: the server resolves
  // the request against the graph and answers with the groups it opened (fewer where the view
  // had to be folded back to fit, with a note).
  async expandTo(expanded, depth = null) {
    if (!this.graph) return;
    this.expanded = expanded;
    this.depth = depth;
    try {
      await this.relayout();
    } finally {
      this.depth = null;
    }
  }

  async relayout() {
    this.layout = await this.layoutFor(this.pass);
    // the server's answer names the groups it opened ("*" and a depth resolved, a view too big folded back)
    if (this.layout && this.layout !== this.graph.layout)
      this.expanded = this.layout.expanded ?? this.expanded;
    else if (this.expanded.includes("*")) this.expanded = [];
    this.view.setGraph(this.graph, this.layout);
    this.view.select(this.selected);
    // expanding or collapsing a module changes which steps play as one
    const position = this.position;
    const positions = this.timeline.positions(this.pass, this.layout);
    const index = position
      ? positions.findIndex((p) => p.phase === position.phase && p.index >= position.index)
      : 0;
    this.player.setPositions(positions, Math.max(0, index));
    this.view.fit();
    this.renderNotes();
    this.sync();
  }

  setLanguage(lang) {
    this.lang = lang;
    rememberLanguage(lang);
    this.t = createTranslator(lang);
    this.view.t = this.t;
    this.player.t = this.t;
    translatePage(document, this.t, lang);
    this.editor.element.setAttribute("aria-label", this.t("program"));
    this.view.root.setAttribute("aria-label", this.t("graphLabel"));
    if (this.statusMessage) this.say(this.statusMessage.key, this.statusMessage.vars);
    const cuda = $("device").querySelector('option[value="cuda"]');
    if (cuda?.disabled) cuda.title = this.t("noCuda");
    this.renderGallery();
    if (this.graph) {
      this.renderNotes();
      this.renderSeries();
      if (this.graph.error) this.showError(errorText(this.graph.error, this.t, this.graph));
      this.player.setPasses(this.graph.backward, this.pass);
      this.view.setGraph(this.graph, this.layout);
      this.view.fit();
      this.view.select(this.selected);
      this.player.go(this.player.index);
    }
    this.sync();
  }

  viewState() {
    return {
      example: this.example ?? undefined,
      code: this.editor.getCode(),
      device: $("device").value,
      step: formatStep(this.position),
      expanded: this.expanded,
      lang: this.lang,
      select: this.selected ?? undefined,
    };
  }

  sync() {
    const state = this.viewState();
    writeState(state);
    const query = stateToQuery(state);
    $("embed-snippet").value =
      `<iframe src="${location.origin}/embed#${query}" width="960" height="540" style="border:0" title="Autograd Explorer"></iframe>`;
    for (const link of document.querySelectorAll("[data-format]")) {
      // a deck holds every step, so its link names no step
      const shown = link.hasAttribute("data-deck") ? { ...state, step: undefined } : state;
      link.href = api.renderUrl({
        ...shown,
        format: link.dataset.format,
        theme: document.documentElement.dataset.theme,
      });
      link.download = downloadName(shown, link.dataset.format);
    }
  }
}

new Explorer().start();
