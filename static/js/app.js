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
import { createView, patchView } from "./view-state.js";
import { Caption } from "./caption.js"; // chain rule (issue 10)
import { createLiveMode, isSmallProgram, sameShape } from "./live.js"; // live mode (issue 10)

const $ = (id) => document.getElementById(id);

// Graph text on screen: at least 12 px on a laptop's page (14 px in Present mode); a phone shows
// the whole graph smaller, for the reader to pinch.
function pageMinScale() {
  return matchMedia("(max-width: 760px)").matches ? 0.5 : scaleForText(12);
}
const THEME_KEY = "autograd-explorer.theme";

// The view state lives in one frozen object, this.view, replaced only by update(patch); the other
// properties are the page's parts, the translator of view.lang, the run in flight and the drawn chart.
class Explorer {
  constructor() {
    const url = readState();
    this.url = url; // the view the page was opened at, read once by start()
    this.view = createView({
      lang: url.lang ?? preferredLanguage(),
      expanded: url.expanded ?? [],
      selected: url.select ?? null,
    });
    this.t = createTranslator(this.view.lang);
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
    this.live = createLiveMode({ toggle: $("live"), run: () => this.run({ live: true }) });
    this.graphView = new GraphView($("graph"), {
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

  // The one way the view changes: the patch's fields are replaced, then what is drawn from them alone
  // is drawn again. The other fields are drawn by the step that changes them, which knows what a new
  // graph or layout leaves to draw.
  update(patch) {
    this.view = patchView(this.view, patch);
    if ("lang" in patch) this.renderLanguage();
    if ("position" in patch) this.renderPosition();
  }

  bindControls() {
    $("run").addEventListener("click", () => this.run());
    $("cancel").addEventListener("click", () => this.request?.abort());
    $("device").addEventListener("change", () => this.sync());
    $("lang").addEventListener("change", () => this.setLanguage($("lang").value));
    $("theme").addEventListener("click", () =>
      this.applyTheme(document.documentElement.dataset.theme === "dark" ? "light" : "dark"),
    );
    $("zoom-in").addEventListener("click", () => this.graphView.zoom(1.25));
    $("zoom-out").addEventListener("click", () => this.graphView.zoom(0.8));
    $("fit").addEventListener("click", () => this.graphView.toggleOverview());
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
    new ResizeObserver(() => this.graphView.fit()).observe($("graph"));
  }

  applyTheme(theme) {
    document.documentElement.dataset.theme = theme;
    storage()?.setItem(THEME_KEY, theme);
  }

  async start() {
    $("lang").value = this.view.lang;
    translatePage(document, this.t, this.view.lang);
    this.update({ examples: await api.listExamples() });
    if (this.url.device) $("device").value = this.url.device;
    await describeDevices($("device"), { noCuda: this.t("noCuda") });
    let code = this.url.code;
    if (!code) {
      const id = this.url.example ?? document.body.dataset.defaultExample;
      const example = await api.getExample(id);
      code = example.code;
      this.update({ lesson: { code, captions: example.captions ?? {} }, example: id });
    } else {
      this.update({ example: this.url.example ?? null });
      // a shared link to a lesson keeps its narration while the code is the lesson's (issue 10)
      const id = this.view.example;
      const example = id ? await api.getExample(id).catch(() => null) : null;
      if (example)
        this.update({ lesson: { code: example.code, captions: example.captions ?? {} } });
    }
    this.renderGallery();
    this.editor.setCode(code);
    await this.run({ step: parseStep(this.url.step) });
  }

  // Back and Forward: show the run or lesson that the history entry recorded.
  async restore() {
    const url = readState();
    if (url.lang && url.lang !== this.view.lang) this.setLanguage(url.lang);
    const example = url.example ? await api.getExample(url.example).catch(() => null) : null;
    const code = url.code ?? example?.code ?? null;
    if (code === null) return;
    this.live.cancel();
    this.update({
      example: url.example ?? null,
      lesson: example ? { code: example.code, captions: example.captions ?? {} } : null,
      expanded: url.expanded ?? [],
      selected: url.select ?? null,
    });
    this.renderGallery();
    this.editor.setCode(code);
    await this.run({ step: parseStep(url.step), remember: false });
  }

  present(on) {
    document.body.classList.toggle("presenting", on);
    $("present").setAttribute("aria-pressed", String(on));
    this.graphView.minScale = on ? scaleForText(14) : pageMinScale();
    this.graphView.maxScale = on ? 3 : 2;
    this.graphView.fit();
  }

  renderGallery() {
    const list = $("gallery");
    clear(list);
    for (const example of this.view.examples) {
      const title = this.view.lang === "zh" ? example.title_zh : example.title_en;
      const current = example.id === this.view.example;
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
    return (this.view.lang === "zh" ? example.lesson_zh : example.lesson) || example.lesson;
  }

  // One sentence above the graph that says what the lesson shows, while its code is shown
  // (an edited program no longer shows what the sentence says).
  renderLesson() {
    const { lesson, code, examples } = this.view;
    const unchanged = lesson && (code === undefined || lesson.code === code);
    const example = unchanged ? examples?.find((e) => e.id === this.view.example) : null;
    $("lesson").textContent = example ? this.lessonOf(example) : "";
    $("lesson-bar").hidden = !example;
  }

  async loadExample(id) {
    this.update({ example: id, expanded: [], selected: null });
    const example = await api.getExample(id);
    this.update({ lesson: { code: example.code, captions: example.captions ?? {} } });
    this.live.cancel();
    this.editor.setCode(example.code);
    this.renderGallery();
    await this.run();
  }

  status(text) {
    this.update({ statusMessage: null });
    $("status").textContent = text;
  }

  // A status line said in the page's language, said again when the language changes.
  say(key, vars = {}) {
    this.status(this.t(key, vars));
    this.update({ statusMessage: { key, vars } });
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
      if (live && graph.error?.type === "SyntaxError" && this.view.graph) {
        // half-typed code: keep the last graph, point at the line
        this.editor.markError(graph.error.line);
        this.showError(errorText(graph.error, this.t));
        this.status("");
        return;
      }
      if (live && sameShape(this.view.graph, graph)) step = this.view.position; // keep the step
      const shown = this.view;
      if (
        remember &&
        shown.code !== undefined &&
        (code !== shown.code || shown.example !== shown.shownExample)
      )
        pushState(this.viewState());
      this.update({ device, code, shownExample: this.view.example });
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
    const timeline = new Timeline(graph);
    this.update({ graph, timeline });
    this.player.setPositions([], 0); // no step of the last graph plays while this one is laid out
    this.update({ layout: graph.layout });
    this.editor.markError(null);
    this.showError(null);
    // a failure opens at the pass it followed, where its ghost op is drawn (or the pass that raised)
    const failedLate = graph.error?.node || failedInBackward(graph.error);
    const opening = step ? step.pass : failedLate ? graph.backward.length - 1 : 0;
    this.update({
      pass: Math.min(Math.max(0, opening ?? 0), Math.max(0, graph.backward.length - 1)),
    });
    const chosen = this.view.expanded;
    if (!step) this.update({ expanded: pathsToOpen(graph, chosen) }); // the module around the call that raised
    this.update({ layout: await this.layoutFor(this.view.pass) });
    const { layout, pass } = this.view; // the pass as it is now: the reader may have picked another
    if (this.view.expanded !== chosen && layout === graph.layout) this.update({ expanded: chosen }); // could not be laid out
    this.graphView.setGraph(graph, layout);
    if (graph.error) {
      this.editor.markError(graph.error.line);
      this.showError(errorText(graph.error, this.t, graph));
    }
    $("stdout").textContent = graph.stdout;
    this.renderNotes();
    this.renderLesson();
    this.renderSeries();
    this.player.setPasses(graph.backward, pass);
    const positions = timeline.positions(pass, layout);
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
    const selected = this.view.selected;
    if (selected && !timeline.byId.has(selected)) this.update({ selected: null });
    this.graphView.select(this.view.selected);
    this.showSidePanel();
    $("hint").hidden = Boolean(step) || !positions.length || index > 0; // an error opens at its call
    this.update({ startIndex: index });
    if (positions.length) this.player.setPositions(positions, index);
    else this.show(null);
    this.graphView.fit();
    performance.mark("graph-drawn");
    performance.measure("draw", "graph-received", "graph-drawn");
    document.body.dataset.shown = String(Number(document.body.dataset.shown ?? 0) + 1);
  }

  renderNotes() {
    const graph = this.view.graph;
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
    notes.push(...noteTexts({ messages: this.view.layout?.messages ?? [], notes: [] }, this.t));
    $("notes").replaceChildren(...notes.map((n) => el("li", {}, n)));
  }

  // A plot only for programs that train in a loop (three or more backward passes).
  renderSeries() {
    const plotted = trainingSeries(this.view.graph).filter((s) => s.values.length >= 3);
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
    const { graph, expanded, code, device } = this.view;
    const perPass =
      graph.layout && graph.layout.pass_index !== null && graph.layout.pass_index !== undefined;
    // a frame far from the usual wide shape (a phone held upright) gets a layout made for it
    const aspect = this.graphView.frameAspect();
    const own = Boolean(graph.layout) && wantsOwnLayout(aspect);
    const depth = this.view.depth ?? null;
    if (
      !own &&
      !expanded.length &&
      depth === null &&
      (!perPass || graph.layout.pass_index === pass)
    )
      return graph.layout;
    const request = {
      code,
      device,
      expanded,
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
    this.update({ pass });
    this.update({ layout: await this.layoutFor(pass) });
    const { graph, layout, selected, timeline } = this.view;
    this.graphView.setGraph(graph, layout);
    this.graphView.select(selected);
    const positions = timeline.positions(pass, layout);
    this.player.setPositions(
      positions,
      positions.findIndex((p) => p.phase === "backward"),
    );
    this.graphView.fit();
  }

  // The player's step: the graph, the source line, the inspector and the caption as of that step.
  show(position) {
    const timeline = this.view.timeline;
    this.update({ position, state: timeline ? timeline.state(position) : this.view.state });
  }

  renderPosition() {
    const { timeline, state } = this.view;
    if (!timeline) return;
    this.graphView.setState(state);
    this.graphView.follow(state.current);
    this.editor.highlightLine(state.line);
    if (this.view.startIndex !== null && this.player.index !== this.view.startIndex)
      $("hint").hidden = true;
    this.renderInspector();
    this.showCaption();
    this.sync();
  }

  showCaption() {
    const { lesson, code, graph, position, lang } = this.view;
    const narration = lesson && lesson.code === code ? lesson.captions : null;
    this.caption.show({
      graph,
      position,
      narration,
      lang,
      t: this.t,
    });
  }

  renderInspector() {
    const { graph, timeline, state, selected } = this.view;
    if (!timeline) return;
    renderInspector($("inspector"), {
      graph,
      timeline,
      state: state ?? timeline.state(null),
      nodeId: selected,
      t: this.t,
      onSelect: (id) => this.select(id),
    });
  }

  select(id) {
    this.update({ selected: id });
    this.graphView.select(id);
    this.renderInspector();
    this.showSidePanel();
    this.sync();
  }

  // The inspector's column takes room from the graph only while it shows something.
  showSidePanel() {
    document.body.classList.toggle(
      "has-inspector",
      Boolean(this.view.selected) || !$("series-panel").hidden,
    );
  }

  async toggleGroup(path) {
    if (!path || !this.view.graph) return;
    // Enter on a module box: focus stays on what stands for the module once the graph is redrawn
    const hadFocus = $("graph").contains(document.activeElement);
    const expanded = this.view.expanded;
    this.update({
      expanded: expanded.includes(path)
        ? expanded.filter((p) => p !== path && !p.startsWith(`${path}.`))
        : [...expanded, path],
    });
    await this.relayout();
    if (hadFocus) this.graphView.focusGroup(path);
  }

  // Expand every group ("*"), none ([]), or every group down to a depth: the server resolves
  // the request against the graph and answers with the groups it opened (fewer where the view
  // had to be folded back to fit, with a note).
  async expandTo(expanded, depth = null) {
    if (!this.view.graph) return;
    this.update({ expanded, depth });
    try {
      await this.relayout();
    } finally {
      this.update({ depth: null });
    }
  }

  async relayout() {
    this.update({ layout: await this.layoutFor(this.view.pass) });
    const { graph, layout, expanded } = this.view;
    // the server's answer names the groups it opened ("*" and a depth resolved, a view too big folded back)
    if (layout && layout !== graph.layout) this.update({ expanded: layout.expanded ?? expanded });
    else if (expanded.includes("*")) this.update({ expanded: [] });
    this.graphView.setGraph(graph, layout);
    this.graphView.select(this.view.selected);
    // expanding or collapsing a module changes which steps play as one
    const position = this.view.position;
    const positions = this.view.timeline.positions(this.view.pass, layout);
    const index = position
      ? positions.findIndex((p) => p.phase === position.phase && p.index >= position.index)
      : 0;
    this.player.setPositions(positions, Math.max(0, index));
    this.graphView.fit();
    this.renderNotes();
    this.sync();
  }

  setLanguage(lang) {
    rememberLanguage(lang);
    this.update({ lang });
  }

  // Every text on the page in the view's language.
  renderLanguage() {
    const lang = this.view.lang;
    this.t = createTranslator(lang);
    this.graphView.t = this.t;
    this.player.t = this.t;
    translatePage(document, this.t, lang);
    this.editor.element.setAttribute("aria-label", this.t("program"));
    this.graphView.root.setAttribute("aria-label", this.t("graphLabel"));
    const said = this.view.statusMessage;
    if (said) this.say(said.key, said.vars);
    const cuda = $("device").querySelector('option[value="cuda"]');
    if (cuda?.disabled) cuda.title = this.t("noCuda");
    this.renderGallery();
    const { graph, layout, pass } = this.view;
    if (graph) {
      this.renderNotes();
      this.renderSeries();
      if (graph.error) this.showError(errorText(graph.error, this.t, graph));
      this.player.setPasses(graph.backward, pass);
      this.graphView.setGraph(graph, layout);
      this.graphView.fit();
      this.graphView.select(this.view.selected);
      this.player.go(this.player.index);
    }
    this.sync();
  }

  viewState() {
    return {
      example: this.view.example ?? undefined,
      code: this.editor.getCode(),
      device: $("device").value,
      step: formatStep(this.view.position),
      expanded: this.view.expanded,
      lang: this.view.lang,
      select: this.view.selected ?? undefined,
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
