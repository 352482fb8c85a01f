"""Layout and export jobs on a graph's JSON, run in the server or, for big graphs, in a helper
process whose parse (about a second for 5 MB, holding the GIL) cannot stall the server."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import threading
from dataclasses import dataclass
from typing import Any

from app.badges import badge_track
from app.deck import render_deck
from app.dot_run import INSTALL_HINT, DotFailed, DotLimits, LayoutBusy, dot_available
from app.errors import BadAnswer, LimitExceeded
from app.export import BadStep, render
from app.graph_notes import add_note
from app.json_text import model_json_bytes
from app.page_render import RendererUnavailable
from app.pass_view import layout_pass
from app.schemas import Graph

BIG_GRAPH_BYTES = 1 << 20  # graphs above this are parsed and laid out in the helper process
NODE_SLACK = 64  # nodes a recording may hold past max_nodes (the ghost of a failed call)


@dataclass(frozen=True)
class GraphBounds:
    """What a recording can hold at most: a graph past these did not come from the recorder."""

    max_nodes: int
    max_passes: int


def read_graph(payload: bytes, bounds: GraphBounds | None) -> Graph:
    """Parse a worker's Graph JSON and check it against the bounds of a recording (BadAnswer).

    The worker's program may have written this JSON itself: it is held to the schema (the
    parser also bounds its depth) and to the counts the recorder keeps to, so that every job
    after it works on a graph of known size."""
    try:
        graph = Graph.model_validate_json(payload)
    except ValueError as exc:  # pydantic's ValidationError, with the JSON's own errors
        raise BadAnswer(f"not a Graph: {_first_error(exc)}") from None
    if bounds is not None:
        if len(graph.nodes) > bounds.max_nodes + NODE_SLACK:
            raise BadAnswer(f"{len(graph.nodes)} nodes, over the recorder's limit")
        if len(graph.backward) > bounds.max_passes:
            raise BadAnswer(f"{len(graph.backward)} backward passes, over the recorder's limit")
        if len(graph.forward) > len(graph.nodes):
            raise BadAnswer("more forward steps than nodes")
    ids = {node.id for node in graph.nodes}
    if len(ids) != len(graph.nodes):
        raise BadAnswer("two nodes share an id")
    if any(e.source not in ids or e.target not in ids for e in graph.edges):
        raise BadAnswer("an edge to a node that is not in the graph")
    return graph


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    try:
        first = errors()[0] if errors is not None else {}
        return f"{first.get('type')} at {'.'.join(map(str, first.get('loc', ())))[:200]}"
    except Exception:  # an error that cannot describe itself is still a bad answer
        return type(exc).__name__


def add_default_layout(graph: Graph, limits: DotLimits) -> bool:
    """Lay out the collapsed view of the first pass into graph.layout (or note why not); False
    when dot was busy."""
    if not dot_available():
        add_note(graph, "noGraphviz", INSTALL_HINT)
        return True
    try:
        graph.layout = layout_pass(graph, [], 0, limits)
    except (LimitExceeded, DotFailed) as exc:
        message = str(getattr(exc, "message", exc))
        add_note(graph, "noLayout", f"No layout: {message}", message=message)
    except LayoutBusy as exc:
        add_note(
            graph,
            "layoutBusy",
            f"No layout yet: {exc}; expand or reload to try again",
            message=str(exc),
        )
        return False
    return True


def do_job(graph: Graph, job: str, args: tuple[Any, ...]) -> Any:
    """One job on a parsed graph.

    ("trace", (limits,)) -> (answer bytes with badges and the default layout, cacheable);
    ("layout", (expanded, pass_index, aspect, limits)) -> layout JSON bytes;
    ("render", (fmt, expanded, step, theme, lang, narration, limits)) -> export bytes;
    ("deck", (options, narration, limits)) -> the deck's file."""
    if job == "trace":
        graph.badges = badge_track(graph)
        complete = add_default_layout(graph, *args)
        return model_json_bytes(graph), complete
    if job == "layout":
        expanded, pass_index, aspect, limits = args
        return layout_pass(graph, expanded, pass_index, limits, aspect).model_dump_json().encode()
    if job == "deck":
        options, narration, limits = args
        return render_deck(graph, options, narration, limits)
    fmt, expanded, step, theme, lang, narration, limits = args
    return render(graph, fmt, expanded, step, theme, lang, limits, narration)


def run_job(
    job: str, payload: bytes, args: tuple[Any, ...], bounds: GraphBounds | None = None
) -> tuple[str, Any]:
    """Parse a graph's JSON and run one job on it; failures come back as plain tuples."""
    try:
        return "ok", do_job(read_graph(payload, bounds), job, args)
    except LimitExceeded as exc:
        return "limit", (exc.limit, exc.message)
    except LayoutBusy as exc:
        return "busy", str(exc)
    except DotFailed as exc:
        return "failed", str(exc)
    except BadStep as exc:
        return "badstep", str(exc)
    except RendererUnavailable as exc:
        return "norenderer", str(exc)
    except BadAnswer as exc:
        return "bad", str(exc)
    except Exception as exc:  # a graph that breaks a job: an answer the server cannot use
        return "bad", f"{type(exc).__name__} in the {job} job"


def unpack(outcome: tuple[str, Any]) -> Any:
    """The result of run_job, or its failure raised again as the original exception."""
    kind, value = outcome
    if kind == "ok":
        return value
    if kind == "limit":
        raise LimitExceeded(*value)
    errors = {
        "busy": LayoutBusy,
        "failed": DotFailed,
        "badstep": BadStep,
        "norenderer": RendererUnavailable,
        "bad": BadAnswer,
    }
    raise errors.get(kind, BadAnswer)(value)


class GraphHelper:
    """One spawned helper process for big graphs, started on first use."""

    def __init__(self) -> None:
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def submit(
        self, job: str, payload: bytes, args: tuple[Any, ...], bounds: GraphBounds | None = None
    ) -> concurrent.futures.Future:
        """Run run_job in the helper process (a new one when the last one died)."""
        with self._lock:
            if self._executor is not None:
                try:
                    return self._executor.submit(run_job, job, payload, args, bounds)
                except concurrent.futures.BrokenExecutor:  # killed, out of memory: start again
                    self._executor.shutdown(wait=False, cancel_futures=True)
            context = multiprocessing.get_context("spawn")  # never fork a threaded server
            self._executor = concurrent.futures.ProcessPoolExecutor(1, mp_context=context)
            return self._executor.submit(run_job, job, payload, args, bounds)

    def close(self) -> None:
        """Stop the helper process, if it was started."""
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=True, cancel_futures=True)
                self._executor = None
