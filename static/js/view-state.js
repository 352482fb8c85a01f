// The explorer's view state: one frozen object of declared fields, replaced whole by each patch.

// Every field the page's view holds, with the value it starts from.
const DEFAULTS = Object.freeze({
  lang: "en", // the page's language
  examples: null, // the gallery's entries, as the server lists them
  example: null, // the gallery entry the editor's code came from
  lesson: null, // {code, captions} of that entry, for its one-line lesson and its narration
  code: undefined, // the program whose graph is shown (undefined until the first run answers)
  device: undefined, // the device that program ran on
  shownExample: undefined, // the gallery entry of the graph shown, to tell a new lesson from a re-run
  graph: null, // the recorded graph, as the server sent it
  timeline: null, // the steps of that graph (timeline.js)
  layout: null, // the layout drawn: the graph's own, or one asked for a pass or an expansion
  pass: 0, // the backward pass drawn
  expanded: [], // the module groups drawn open
  depth: null, // a depth asked of the server while a layout is fetched, then null again
  selected: null, // the node the inspector shows
  position: null, // the player's step
  state: null, // what the graph looks like at that step (Timeline.state)
  startIndex: null, // the step a new graph opened at, to hide the hint once the reader moves
  statusMessage: null, // {key, vars} of a status line said again when the language changes
});

export const VIEW_FIELDS = Object.freeze(Object.keys(DEFAULTS));

// Values are replaced, never changed in place: a field's old value stays as it was.
export function createView(fields = {}) {
  return patchView(DEFAULTS, fields);
}

// A new view with the patch's fields replaced; a field nobody declared is a mistake, not a new field.
export function patchView(view, patch) {
  for (const field of Object.keys(patch))
    if (!Object.hasOwn(DEFAULTS, field)) throw new TypeError(`no view field "${field}"`);
  return Object.freeze({ ...view, ...patch });
}
