// The program's error where the eye is: a banner over the graph, and the graph opened at the failure.
import { el } from "./dom.js";

/** Show text (a string or nodes) in the banner with a close button; null hides it. */
export function showErrorBanner(box, text, t) {
  box.hidden = !text;
  if (!text) {
    box.replaceChildren();
    return;
  }
  const close = el(
    "button",
    {
      type: "button",
      class: "error-close",
      "data-testid": "error-close",
      "aria-label": t("dismiss"),
      title: t("dismiss"),
      onclick: () => {
        box.hidden = true;
      },
    },
    "×",
  );
  box.replaceChildren(el("div", { class: "error-text", tabindex: "0" }, ...[text].flat()), close);
}

/** The expanded module paths plus those that hide the call that raised (its ghost op) in a box. */
export function pathsToOpen(graph, expanded) {
  const ghost = graph.error?.node ? graph.nodes.find((n) => n.id === graph.error.node) : null;
  const shownAs = ghost ? graph.layout?.node_of?.[ghost.id] : null;
  if (!ghost || !shownAs || shownAs === ghost.id || !shownAs.startsWith("group:")) return expanded;
  const hiddenIn = shownAs.slice("group:".length);
  let wanted = [hiddenIn];
  if (ghost.module && !hiddenIn.startsWith("line:")) {
    const parts = ghost.module.split(".");
    wanted = parts.map((_, i) => parts.slice(0, i + 1).join("."));
  }
  // a module folded with its repeats ('layers.30' in 'fold:layers.0') opens its fold too
  const foldOf = new Map(
    Object.entries(graph.layout?.folds ?? {}).flatMap(([fold, members]) =>
      members.map((m) => [m, fold]),
    ),
  );
  wanted = wanted.flatMap((path) => (foldOf.has(path) ? [foldOf.get(path), path] : [path]));
  return [...expanded, ...wanted.filter((path) => !expanded.includes(path))];
}

/** Whether the program's error was raised by a backward pass (which then was not recorded). */
export function failedInBackward(error) {
  return error?.pass_index !== null && error?.pass_index !== undefined;
}
