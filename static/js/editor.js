// The code editor (CodeMirror 6): Python highlighting, Ctrl/Cmd+Enter runs, the player's line and error marks.
// Tab indents; Esc hands the keyboard back to the page (the player's keys), so it never gets trapped.
import {
  Decoration,
  EditorState,
  EditorView,
  HighlightStyle,
  StateEffect,
  StateField,
  defaultKeymap,
  drawSelection,
  history,
  historyKeymap,
  indentUnit,
  indentWithTab,
  keymap,
  lineNumbers,
  python,
  syntaxHighlighting,
  tags,
} from "../vendor/codemirror/codemirror.js";

// Colours come from the page's CSS variables, so light and dark both meet AA contrast.
const highlighting = HighlightStyle.define([
  {
    tag: [
      tags.keyword,
      tags.controlKeyword,
      tags.definitionKeyword,
      tags.moduleKeyword,
      tags.operatorKeyword,
    ],
    color: "var(--syn-keyword)",
    fontWeight: "600",
  },
  { tag: [tags.string, tags.special(tags.string)], color: "var(--syn-string)" },
  { tag: [tags.number, tags.bool, tags.null], color: "var(--syn-number)" },
  { tag: [tags.comment, tags.lineComment], color: "var(--syn-comment)", fontStyle: "italic" },
  {
    tag: [tags.function(tags.variableName), tags.function(tags.propertyName), tags.className],
    color: "var(--syn-function)",
  },
]);

const setMarks = StateEffect.define();

// Two line marks: the player's current source line and the line an error points at.
const marks = StateField.define({
  create: () => ({ step: null, error: null, decorations: Decoration.none }),
  update(value, transaction) {
    let { step, error } = value;
    for (const effect of transaction.effects)
      if (effect.is(setMarks)) ({ step, error } = { step, error, ...effect.value });
    const doc = transaction.state.doc;
    const valid = (line) => (line && line >= 1 && line <= doc.lines ? line : null);
    step = valid(step);
    error = valid(error);
    const ranges = [];
    if (step) ranges.push(Decoration.line({ class: "cm-step-line" }).range(doc.line(step).from));
    if (error)
      ranges.push(
        Decoration.line({ class: "cm-error-line", attributes: { "aria-invalid": "true" } }).range(
          doc.line(error).from,
        ),
      );
    ranges.sort((a, b) => a.from - b.from);
    return { step, error, decorations: Decoration.set(ranges, true) };
  },
  provide: (field) => EditorView.decorations.from(field, (value) => value.decorations),
});

export function createEditor(
  container,
  { onRun = () => {}, onChange = () => {}, onEscape = null, label = "program" } = {},
) {
  const listeners = new Set();
  let silent = false;
  const view = new EditorView({
    parent: container,
    state: EditorState.create({
      doc: "",
      extensions: [
        lineNumbers(),
        history(),
        drawSelection(),
        indentUnit.of("    "),
        EditorState.tabSize.of(4),
        python(),
        syntaxHighlighting(highlighting),
        marks,
        keymap.of([
          {
            key: "Mod-Enter",
            preventDefault: true,
            run: () => {
              onRun();
              return true;
            },
          },
          {
            key: "Escape",
            run: () => {
              if (!onEscape) return false;
              onEscape();
              return true;
            },
          },
          ...defaultKeymap,
          ...historyKeymap,
          indentWithTab,
        ]),
        EditorView.contentAttributes.of({
          "data-testid": "editor",
          "aria-label": label,
          tabindex: "0",
          spellcheck: "false",
          autocapitalize: "off",
          autocorrect: "off",
        }),
        EditorView.updateListener.of((update) => {
          if (!update.docChanged || silent) return;
          const value = update.state.doc.toString();
          onChange(value);
          for (const listener of listeners) listener(value);
        }),
      ],
    }),
  });
  container.classList.add("editor");

  const field = () => view.state.field(marks);
  const mark = (change) => {
    view.dispatch({ effects: setMarks.of(change) });
    const { step, error } = field();
    container.dataset.currentLine = step ? String(step) : "";
    container.dataset.errorLine = error ? String(error) : "";
  };
  const setValue = (code) => {
    silent = true;
    try {
      view.dispatch({
        changes: { from: 0, to: view.state.doc.length, insert: code },
        selection: { anchor: 0 },
      });
    } finally {
      silent = false;
    }
    view.scrollDOM.scrollTop = 0;
  };
  const getValue = () => view.state.doc.toString();

  return {
    view,
    element: view.contentDOM,
    getValue,
    setValue,
    getCode: getValue,
    setCode: setValue,
    // A change event for other modules (live mode): the listener gets the new text.
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    focus: () => view.focus(),
    highlightLine(line) {
      mark({ step: line ?? null });
      const current = field().step;
      if (!current) return;
      // scroll the editor only, never the page (on a phone the graph sits above the editor)
      const block = view.lineBlockAt(view.state.doc.line(current).from);
      const scroller = view.scrollDOM;
      if (
        block.top < scroller.scrollTop ||
        block.bottom > scroller.scrollTop + scroller.clientHeight
      ) {
        scroller.scrollTop = Math.max(0, block.top - scroller.clientHeight / 3);
      }
    },
    markError(line) {
      mark({ error: line ?? null });
    },
  };
}
