"""Fit a recorded Graph into the answer's byte limit: values summarised first, then nodes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from app.graph_notes import add_note
from app.json_text import model_json_bytes
from app.schemas import Graph, TensorData

SHRINK = 0.8  # each further try keeps this share of the nodes the last one kept


def _tensor_data(graph: Graph) -> list[TensorData]:
    """Every TensorData inside the graph (node values, gradients, rules), walked iteratively."""
    found: list[TensorData] = []
    stack: list[Any] = [graph]
    while stack:
        item = stack.pop()
        if isinstance(item, TensorData):
            found.append(item)
        elif isinstance(item, BaseModel):
            stack.extend(v for v in item.__dict__.values() if not isinstance(v, (str, int, float)))
        elif isinstance(item, (list, tuple)):
            stack.extend(v for v in item if not isinstance(v, (str, int, float)))
        elif isinstance(item, dict):
            stack.extend(v for v in item.values() if not isinstance(v, (str, int, float)))
    return found


def summarise_values(graph: Graph) -> None:
    """Keep every tensor's statistics, drop its inline values, heatmap and histogram."""
    for data in _tensor_data(graph):
        data.__dict__.update(values=None, heatmap=None, histogram=None)


def _rule_ids(rule: Any) -> set[str]:
    ids = {term.input for term in rule.terms if term.input}
    if rule.accumulate is not None:
        ids.add(rule.accumulate.leaf)
    if rule.meet is not None:
        ids.update(part.source for part in rule.meet.parts)
    return ids


def keep_first_nodes(graph: Graph, count: int) -> None:
    """The graph as it stood after its first `count` nodes: every reference to a later node is
    dropped (edges, steps, gradients, rules)."""
    graph.nodes = graph.nodes[:count]
    kept = {node.id for node in graph.nodes}
    graph.edges = [e for e in graph.edges if e.source in kept and e.target in kept]
    forward = []
    for step in graph.forward:
        if step.node not in kept:
            continue
        step.nodes = [n for n in step.nodes if n in kept]
        step.inputs = [n for n in step.inputs if n in kept]
        step.outputs = [n for n in step.outputs if n in kept]
        forward.append(step)
    graph.forward = forward
    for record in graph.backward:
        record.root = [n for n in record.root if n in kept]
        record.inputs = [n for n in record.inputs if n in kept]
        record.steps = [s for s in record.steps if s.node in kept]
        for step in record.steps:
            if step.rule is not None and not _rule_ids(step.rule) <= kept:
                step.rule = None
        for table in (record.grads, record.tensor_grads, record.results):
            for key in [k for k in table if k not in kept]:
                del table[key]
    for node in graph.nodes:
        if node.kind == "op":
            node.next = [n if n in kept else None for n in node.next]
            for saved in node.saved:
                if saved.tensor is not None and saved.tensor not in kept:
                    saved.tensor = None
    if graph.error is not None and graph.error.node not in kept:
        graph.error.node = None
    graph.badges = None
    graph.layout = None


def _note(graph: Graph, key: str, text: str, **params: str | int | None) -> None:
    if any(m.key == key for m in graph.messages):
        return  # a graph fitted again keeps its first note
    add_note(graph, key, text, **params)


def fit_to_bytes(graph: Graph, limit: int) -> bytes | None:
    """The graph's JSON within limit bytes, summarised and then cut as far as needed; None when
    not even its first node fits."""
    payload = model_json_bytes(graph)
    size = len(payload)
    if size <= limit:
        return payload
    summarise_values(graph)
    _note(
        graph,
        "responseValuesSummarised",
        f"The graph's answer was {size} bytes, over the limit of {limit}: every tensor is shown "
        "by its statistics, without its values.",
        size=size,
        limit=limit,
    )
    payload = model_json_bytes(graph)
    if len(payload) > limit:
        _note(
            graph,
            "responseNodesDropped",
            f"The graph still did not fit in {limit} bytes: only its first nodes are shown.",
            limit=limit,
        )
    count = len(graph.nodes)
    while len(payload) > limit and count > 1:
        count = max(1, min(count - 1, int(count * min(SHRINK, limit / len(payload)))))
        keep_first_nodes(graph, count)
        payload = model_json_bytes(graph)
    return payload if len(payload) <= limit else None


def refit(payload: bytes, limit: int) -> bytes | None:
    """A graph's JSON fitted again into a smaller limit (its layout and badges must fit too)."""
    return fit_to_bytes(Graph.model_validate_json(payload), limit)
