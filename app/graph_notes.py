"""A note for the reader added to a graph: a message key the page translates, and its English."""

from __future__ import annotations

from app.schemas import Graph, NoteMessage


def add_note(graph: Graph, key: str, text: str, **params: str | int | None) -> None:
    """Add a note as a message key with parameters, and its English text to Graph.notes (the
    mirror that API clients without the page's strings read)."""
    graph.messages.append(NoteMessage(key=key, params=params, text=text))
    graph.notes.append(text)
