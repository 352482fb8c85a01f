// The player of an exported HTML file: the graph is inline, nothing is fetched.
import { Caption } from "./caption.js";
import { createTranslator, translatePage } from "./i18n.js";
import { mountPlayer } from "./standalone.js";
import { parseStep } from "./state.js";

const graph = JSON.parse(document.getElementById("graph-data").textContent);
const settings = JSON.parse(document.getElementById("settings").textContent);
const t = createTranslator(settings.lang ?? "en");
translatePage(document, t, settings.lang ?? "en");
const layouts = settings.layouts ?? {};
const caption = new Caption(document.getElementById("caption"));
mountPlayer({
  graph,
  layout: graph.layout,
  step: parseStep(settings.step),
  t,
  graphContainer: document.getElementById("graph"),
  playerContainer: document.getElementById("player"),
  layoutFor: async (pass) => layouts[pass] ?? graph.layout,
  // the lesson's narration and the chain rule under the graph, as on the page
  onPosition: (position) =>
    caption.show({
      graph,
      position,
      narration: settings.narration ?? null,
      lang: settings.lang ?? "en",
      t,
    }),
});
document.body.dataset.ready = "true";
