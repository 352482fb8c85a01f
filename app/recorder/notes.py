"""Notes for the reader: each one in English and as a message key the page translates."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.graph_notes import add_note
from app.schemas import Graph


@dataclass
class Notes:
    """The notes of one recording, each said once where its cause comes back."""

    graph: Graph
    _said: set[str] = field(default_factory=set)

    def note(self, key: str, text: str, **params: str | int | None) -> None:
        """A note for the reader, in English and as a message key the page translates."""
        add_note(self.graph, key, text, **params)

    def note_once(self, key: str, text: str, **params: str | int | None) -> None:
        """A note said once per recording (per key and parameters), however often its cause
        comes back."""
        once = f"{key}:{sorted(params.items())}"
        if once not in self._said:
            self._said.add(once)
            self.note(key, text, **params)

    def first_time(self, cause: str) -> bool:
        """Whether cause is met for the first time in this recording (and mark it met)."""
        if cause in self._said:
            return False
        self._said.add(cause)
        return True
