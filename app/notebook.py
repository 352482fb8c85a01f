"""Notebook use: record live tensors or a program and show the animated player inline."""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any, Literal

import torch
from torch import nn

from app.deck import DeckOptions, render_deck
from app.export import picture_state, render
from app.graph_notes import add_note
from app.layout import layout_graph
from app.notebook_cell import cell_height, cell_html
from app.recorder import trace_tensors
from app.schemas import Caption, Graph
from app.step_caption import narration_for
from app.tracing import trace_code

ExportFormat = Literal["svg", "png", "dot", "html"]
FREED_GRAPH_NOTE = (
    "No backward pass recorded: an earlier backward() freed this graph's saved tensors. Call "
    "explore(y) before y.backward(), or use y.backward(retain_graph=True)."
)
SAVE_FORMATS: dict[str, ExportFormat] = {
    ".html": "html",
    ".htm": "html",
    ".svg": "svg",
    ".png": "png",
    ".dot": "dot",
}
DECK_SUFFIXES: dict[str, Literal["pdf", "pptx", "gif", "mp4"]] = {
    ".pdf": "pdf",
    ".pptx": "pptx",
    ".gif": "gif",
    ".mp4": "mp4",
}


@dataclass
class Exploration:
    """A recorded graph with the ways a notebook shows, exports and saves it."""

    graph: Graph
    step: str | None = None
    theme: Literal["light", "dark"] = "light"
    lang: Literal["en", "zh"] = "en"
    expanded: tuple[str, ...] = ()
    height: int | None = None  # the iframe's pixels; None: follows the graph (cell_height)
    narration: dict[str, Caption] = field(default_factory=dict, repr=False)  # a lesson's words
    _laid_out: dict[tuple[str, ...], Graph] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        picture_state(self.graph, self.step, self.lang)  # BadStep now rather than at display time

    def with_view(self, **changes: Any) -> Exploration:
        """The same recording shown at another step, theme, language, expansion or height."""
        if "expanded" in changes:
            changes["expanded"] = tuple(changes["expanded"])
        return replace(self, _laid_out=self._laid_out, **changes)

    def _laid_out_graph(self) -> Graph:
        """The graph with the layout of this view's expanded modules (laid out once per set)."""
        key = tuple(sorted(self.expanded))
        graph = self._laid_out.get(key)
        if graph is None:
            layout = layout_graph(self.graph, list(key))
            graph = self._laid_out[key] = self.graph.model_copy(update={"layout": layout})
        return graph

    def _export(self, fmt: ExportFormat) -> bytes:
        graph = self._laid_out_graph()
        expanded = sorted(self.expanded)
        return render(graph, fmt, expanded, self.step, self.theme, self.lang, None, self.narration)

    def to_deck(
        self,
        fmt: Literal["pdf", "pptx", "gif", "mp4"],
        steps: str | None = None,
        aspect: Literal["16:9", "4:3"] = "16:9",
        seconds: float = 1.5,
        title: str = "",
        max_pages: int = 120,
    ) -> bytes:
        """Every player step as a page (what `autograd-explorer render --format FMT` writes),
        in this view's theme, language and expanded modules; steps: '3-9', counted from 1."""
        options = DeckOptions(
            format=fmt,
            steps=steps,
            theme=self.theme,
            lang=self.lang,
            expanded=tuple(self.expanded),
            aspect=aspect,
            seconds=seconds,
            title=title,
            max_pages=max_pages,
        )
        return render_deck(self.graph, options, self.narration)

    def to_pdf(self, steps: str | None = None, aspect: Literal["16:9", "4:3"] = "16:9") -> bytes:
        """A vector PDF with a page per step (for Beamer's \\includegraphics[page=N])."""
        return self.to_deck("pdf", steps, aspect)

    def to_pptx(self, steps: str | None = None, aspect: Literal["16:9", "4:3"] = "16:9") -> bytes:
        """A PowerPoint deck with a slide per step, the narration in the speaker notes."""
        return self.to_deck("pptx", steps, aspect)

    def to_gif(self, steps: str | None = None, seconds: float = 1.5) -> bytes:
        """An animated GIF of the steps, seconds each."""
        return self.to_deck("gif", steps, seconds=seconds)

    def to_mp4(self, steps: str | None = None, seconds: float = 1.5) -> bytes:
        """An MP4 video of the steps, seconds each."""
        return self.to_deck("mp4", steps, seconds=seconds)

    def to_json(self, indent: int | None = None) -> str:
        """The recorded Graph as JSON, the same contract as the HTTP API."""
        return self.graph.model_dump_json(indent=indent)

    def to_dict(self) -> dict[str, Any]:
        """The recorded Graph as plain Python data (what json.loads of to_json() gives)."""
        return json.loads(self.to_json())

    def to_svg(self) -> str:
        """The graph at the chosen step as an SVG document."""
        return self._export("svg").decode("utf-8")

    def to_html(self) -> str:
        """A standalone page: the graph and the animated player, with no network use."""
        return self._export("html").decode("utf-8")

    def save(self, path: str | Path) -> Path:
        """Write .html (the player), .svg, .png, .dot, .json, or a deck of every step (.pdf,
        .pptx, .gif, .mp4), chosen by the file's suffix."""
        target = Path(path)
        suffix = target.suffix.lower()
        if suffix == ".json":
            target.write_text(self.to_json(indent=2), encoding="utf-8")
        elif suffix in SAVE_FORMATS:
            target.write_bytes(self._export(SAVE_FORMATS[suffix]))
        elif suffix in DECK_SUFFIXES:
            target.write_bytes(self.to_deck(DECK_SUFFIXES[suffix], title=target.stem))
        else:
            known = ", ".join([*SAVE_FORMATS, ".json", *DECK_SUFFIXES])
            raise ValueError(f"cannot save {target.name!r}: the suffix must be one of {known}")
        return target

    def _repr_html_(self) -> str:
        """The player in a sandboxed iframe as tall as the graph needs, so its scripts run in
        Jupyter offline; where a renderer strips iframes (untrusted output), the graph at its
        step as a picture instead."""
        height = self.height if self.height is not None else self.cell_height()
        return cell_html(self.to_html(), self.to_svg(), height, self.lang)

    def cell_height(self) -> int:
        """The iframe's height in pixels that shows this graph whole in a notebook's cell."""
        return cell_height(self._laid_out_graph().layout)

    def __repr__(self) -> str:
        ops = sum(1 for n in self.graph.nodes if n.kind == "op")
        tensors = len(self.graph.nodes) - ops
        error = f", error={self.graph.error.type}" if self.graph.error else ""
        return (
            f"<Exploration: {tensors} tensors, {ops} ops, {len(self.graph.forward)} forward "
            f"steps, {len(self.graph.backward)} backward passes{error}>"
        )


def _variables_of(frame: FrameType | None) -> dict[str, torch.Tensor | nn.Module]:
    """Tensors and modules bound to public names in a frame (its globals, then its locals)."""
    if frame is None:
        return {}
    found: dict[str, torch.Tensor | nn.Module] = {}
    for scope in (frame.f_globals, frame.f_locals):
        for name, value in scope.items():
            # Underscored names are IPython's output history (_, __, _3): not the user's names.
            if not name.startswith("_") and isinstance(value, (torch.Tensor, nn.Module)):
                found[name] = value
    return found


def explore(
    *tensors: torch.Tensor,
    names: Mapping[str, torch.Tensor | nn.Module] | None = None,
    backward: bool = True,
) -> Exploration:
    """Record the graph behind live tensors; every .grad is left as it was.

    Tensors and modules are named after the caller's variables unless `names` is given.
    A scalar root's backward pass is recorded through autograd.grad, so no .grad changes.
    """
    if not tensors or not all(isinstance(t, torch.Tensor) for t in tensors):
        raise TypeError("explore() takes one or more tensors, e.g. explore(loss)")
    if names is None:
        frame = inspect.currentframe()
        names = _variables_of(frame.f_back if frame is not None else None)
        del frame
    try:
        graph = trace_tensors(*tensors, names=names, backward=backward)
    except RuntimeError as exc:
        if not backward or "backward through the graph a second time" not in str(exc):
            raise
        graph = trace_tensors(*tensors, names=names, backward=False)
        add_note(graph, "freedGraph", FREED_GRAPH_NOTE)
    return Exploration(graph)


def explore_code(code: str, device: str = "cpu", seed: int = 0) -> Exploration:
    """Run a program (in this process, as trusted code) and record its autograd graph."""
    return Exploration(trace_code(code, device=device, seed=seed), narration=narration_for(code))
