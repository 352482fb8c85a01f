// Live mode: trace again after a pause in typing; the caller cancels stale requests.

const STORAGE_KEY = "autograd-explorer.live";
export const SMALL_PROGRAM = { maxChars: 4000, maxNodes: 400 };

// toggle: a checkbox; run(): starts a trace (and aborts the previous one). Returns a controller.
export function createLiveMode({ toggle, run, delay = 400 }) {
  let timer = null;
  let chosen = globalThis.localStorage?.getItem(STORAGE_KEY); // "on" | "off" once the person chose
  toggle.checked = chosen !== "off";
  toggle.addEventListener("change", () => {
    chosen = toggle.checked ? "on" : "off";
    globalThis.localStorage?.setItem(STORAGE_KEY, chosen);
    if (!toggle.checked) clearTimeout(timer);
  });
  return {
    get on() {
      return toggle.checked;
    },
    // The editor changed: schedule a trace once typing pauses (never blocks the keystroke).
    changed() {
      clearTimeout(timer);
      if (!toggle.checked) return;
      timer = setTimeout(() => {
        timer = null;
        run();
      }, delay);
    },
    // Switch on for small programs and off for big ones, unless the person chose.
    suggest(small) {
      if (chosen === null) toggle.checked = small;
    },
    cancel() {
      clearTimeout(timer);
    },
  };
}

export function isSmallProgram(code, graph) {
  return (
    code.length <= SMALL_PROGRAM.maxChars &&
    (!graph || graph.nodes.length <= SMALL_PROGRAM.maxNodes)
  );
}

// Two graphs have the same shape when their nodes, forward steps and backward steps line up.
export function sameShape(a, b) {
  if (!a || !b) return false;
  if (
    a.nodes.length !== b.nodes.length ||
    a.forward.length !== b.forward.length ||
    a.backward.length !== b.backward.length
  )
    return false;
  if (a.nodes.some((n, i) => n.id !== b.nodes[i].id || n.kind !== b.nodes[i].kind)) return false;
  return a.backward.every((p, i) => p.steps.length === b.backward[i].steps.length);
}
