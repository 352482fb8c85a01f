// The server's notes in the reader's language: a message key with parameters, or the English text.

export function noteTexts(graph, t) {
  const keyed = graph.messages ?? [];
  const covered = new Set(keyed.map((m) => m.text));
  const texts = keyed.map((m) => {
    const text = t(`note.${m.key}`, m.params);
    return text === `note.${m.key}` ? m.text : text;
  });
  for (const note of graph.notes ?? []) if (!covered.has(note)) texts.push(note);
  return texts;
}
