// The player of an exported HTML file: the graph is inline, nothing is fetched.
import { GraphView } from "./graph-view.js";
import { createTranslator, translatePage } from "./i18n.js";
import { Player } from "./player.js";
import { parseStep } from "./state.js";
import { Timeline } from "./timeline.js";

const graph = JSON.parse(document.getElementById("graph-data").textContent);
const settings = JSON.parse(document.getElementById("settings").textContent);
const t = createTranslator(settings.lang ?? "en");
translatePage(document, t, settings.lang ?? "en");
const timeline = new Timeline(graph);
const view = new GraphView(document.getElementById("graph"), { t });
view.setGraph(graph, graph.layout);
view.fit();
window.addEventListener("resize", () => view.fit());
const step = parseStep(settings.step);
let pass = Math.min(step?.pass ?? 0, Math.max(0, graph.backward.length - 1));
const player = new Player(document.getElementById("player"), {
  t,
  onPosition: (position) => view.setState(timeline.state(position)),
  onPass: (chosen) => { pass = chosen; player.setPositions(timeline.positions(pass), graph.forward.length); },
});
player.setPasses(graph.backward, pass);
const positions = timeline.positions(pass);
const found = step ? positions.findIndex((p) => p.phase === step.phase && p.index === step.index) : 0;
player.setPositions(positions, Math.max(0, found));
document.body.dataset.ready = "true";
