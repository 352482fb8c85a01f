// The embeddable player: graph and player bar only, for iframes in slides.
import * as api from "./api.js";
import { GraphView } from "./graph-view.js";
import { createTranslator, preferredLanguage, translatePage } from "./i18n.js";
import { Player } from "./player.js";
import { parseStep, readState, stateToQuery } from "./state.js";
import { Timeline } from "./timeline.js";

async function start() {
  const url = readState();
  const lang = url.lang ?? preferredLanguage();
  const t = createTranslator(lang);
  translatePage(document, t, lang);
  const link = document.getElementById("open");
  link.href = `/#${stateToQuery(url)}`;
  const status = document.getElementById("status");
  let code = url.code;
  if (!code) code = (await api.getExample(url.example ?? document.body.dataset.defaultExample)).code;
  let graph;
  try {
    graph = await api.trace({ code, device: url.device ?? "cpu" });
  } catch (error) {
    status.textContent = error.message;
    return;
  }
  const layout = url.expanded?.length ? await api.layout({ code, device: url.device ?? "cpu", expanded: url.expanded }) : graph.layout;
  const timeline = new Timeline(graph);
  const view = new GraphView(document.getElementById("graph"), { t });
  view.setGraph(graph, layout);
  view.fit();
  window.addEventListener("resize", () => view.fit());
  const step = parseStep(url.step);
  let pass = Math.min(step?.pass ?? 0, Math.max(0, graph.backward.length - 1));
  const player = new Player(document.getElementById("player"), {
    t,
    onPosition: (position) => view.setState(timeline.state(position)),
    onPass: (chosen) => { pass = chosen; player.setPositions(timeline.positions(pass), graph.forward.length); },
  });
  player.setPasses(graph.backward, pass);
  const positions = timeline.positions(pass);
  const index = step ? Math.max(0, positions.findIndex((p) => p.phase === step.phase && p.index === step.index)) : 0;
  player.setPositions(positions, index);
  if (graph.error) status.textContent = `${graph.error.type} (line ${graph.error.line}): ${graph.error.message}`;
}

start();
