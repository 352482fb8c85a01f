// What the explorer's editor uses from CodeMirror 6, bundled into one ES module.
export { EditorState, StateEffect, StateField, RangeSetBuilder } from "@codemirror/state";
export { EditorView, keymap, lineNumbers, highlightActiveLine, Decoration, drawSelection } from "@codemirror/view";
export { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
export { syntaxHighlighting, defaultHighlightStyle, HighlightStyle, indentUnit, bracketMatching } from "@codemirror/language";
export { python } from "@codemirror/lang-python";
export { tags } from "@lezer/highlight";
