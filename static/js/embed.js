// The embeddable player: graph and player bar only, for iframes in slides.
import * as api from "./api.js";
import { el } from "./dom.js";
import { createTranslator, preferredLanguage, translatePage } from "./i18n.js";
import { mountPlayer } from "./standalone.js";
import { parseStep, readState, stateToQuery } from "./state.js";
import { errorText } from "./torch-messages.js";

// A readable message in place of the graph when the server cannot be reached.
function showOffline(t, graphContainer, retry) {
  graphContainer.replaceChildren(
    el(
      "div",
      { class: "offline", role: "alert", "data-testid": "offline" },
      el("p", {}, t("offline")),
      el("button", { type: "button", onclick: retry }, t("retry")),
    ),
  );
}

async function start() {
  const url = readState();
  const lang = url.lang ?? preferredLanguage();
  const t = createTranslator(lang);
  translatePage(document, t, lang);
  document.getElementById("open").href = `/#${stateToQuery(url)}`;
  const status = document.getElementById("status");
  const graphContainer = document.getElementById("graph");
  const device = url.device ?? "cpu";
  const expanded = url.expanded ?? [];
  try {
    const code =
      url.code ?? (await api.getExample(url.example ?? document.body.dataset.defaultExample)).code;
    const graph = await api.trace({ code, device });
    const step = parseStep(url.step);
    const pass = Math.min(step?.pass ?? 0, Math.max(0, graph.backward.length - 1));
    const layoutFor = (p) =>
      expanded.length ||
      (graph.layout && graph.layout.pass_index !== null && graph.layout.pass_index !== p)
        ? api.layout({ code, device, expanded, pass: graph.layout?.pass_index === null ? null : p })
        : Promise.resolve(graph.layout);
    const layout = await layoutFor(pass);
    mountPlayer({
      graph,
      layout,
      step,
      t,
      layoutFor,
      graphContainer,
      playerContainer: document.getElementById("player"),
    });
    if (graph.error) {
      status.replaceChildren(...errorText(graph.error, t));
      status.title = status.textContent;
    }
  } catch (error) {
    if (error instanceof api.ApiError) status.textContent = t("failed", { message: error.message });
    else showOffline(t, graphContainer, () => location.reload());
  }
  document.body.dataset.ready = "true";
}

start();
