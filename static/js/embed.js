// The embeddable player: graph and player bar only, for iframes in slides.
import * as api from "./api.js";
import { createTranslator, preferredLanguage, translatePage } from "./i18n.js";
import { mountPlayer } from "./standalone.js";
import { parseStep, readState, stateToQuery } from "./state.js";

async function start() {
  const url = readState();
  const lang = url.lang ?? preferredLanguage();
  const t = createTranslator(lang);
  translatePage(document, t, lang);
  document.getElementById("open").href = `/#${stateToQuery(url)}`;
  const status = document.getElementById("status");
  const device = url.device ?? "cpu";
  try {
    const code = url.code ?? (await api.getExample(url.example ?? document.body.dataset.defaultExample)).code;
    const graph = await api.trace({ code, device });
    const layout = url.expanded?.length ? await api.layout({ code, device, expanded: url.expanded }) : graph.layout;
    mountPlayer({
      graph, layout, step: parseStep(url.step), t,
      graphContainer: document.getElementById("graph"), playerContainer: document.getElementById("player"),
    });
    if (graph.error) status.textContent = t("errorAt", { type: graph.error.type, line: graph.error.line ?? "?", message: graph.error.message });
  } catch (error) {
    status.textContent = t("failed", { message: error.message });
  }
}

start();
