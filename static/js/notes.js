// The server's notes in the reader's language: a message key with parameters, or the English text.

import { quotedMessage } from "./torch-messages.js";

// notes whose message is torch's own text: their key translates the frame, the message is quoted
const QUOTED = new Set(["warning", "warningNoLine", "callNotRecorded"]);

export function noteTexts(graph, t) {
  const keyed = graph.messages ?? [];
  const covered = new Set(keyed.map((m) => m.text));
  const texts = keyed.map((m) => {
    if (QUOTED.has(m.key) && m.params?.message !== undefined) {
      return quotedMessage(t(`note.${m.key}`, m.params), m.params.message, t);
    }
    const text = t(`note.${m.key}`, m.params);
    return text === `note.${m.key}` ? m.text : text;
  });
  for (const note of graph.notes ?? []) if (!covered.has(note)) texts.push(note);
  return texts;
}
