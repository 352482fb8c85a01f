"""Each node of a recorded graph by id, and the ops that made and used each tensor: built once."""

from __future__ import annotations

import threading
import weakref
from functools import cached_property

from app.schemas import Graph, OpNode, TensorNode


class GraphIndex:
    """A graph's nodes by id and its edges read by role, in the order the edges were recorded."""

    def __init__(self, graph: Graph) -> None:
        self.nodes: dict[str, TensorNode | OpNode] = {n.id: n for n in graph.nodes}
        self.made_by: dict[str, list[str]] = {}  # tensor -> the ops with an edge into it
        self.used_by: dict[str, list[str]] = {}  # tensor -> the ops it is an input of
        self.outputs: dict[str, list[str]] = {}  # op -> the tensors it made
        self.inputs: dict[str, list[str]] = {}  # op -> its input tensors
        for edge in graph.edges:
            source, target = self.nodes.get(edge.source), self.nodes.get(edge.target)
            if isinstance(source, OpNode) and isinstance(target, TensorNode):
                self.made_by.setdefault(target.id, []).append(source.id)
                self.outputs.setdefault(source.id, []).append(target.id)
            elif isinstance(source, TensorNode) and isinstance(target, OpNode):
                self.used_by.setdefault(source.id, []).append(target.id)
                self.inputs.setdefault(target.id, []).append(source.id)

    def producer(self, tensor: str) -> str | None:
        """The op that made a tensor: the last recorded, an AccumulateGrad included."""
        made = self.made_by.get(tensor)
        return made[-1] if made else None

    def computing_op(self, tensor: str) -> str | None:
        """The first op that computed a tensor; a leaf's AccumulateGrad does not count."""
        for op in self.made_by.get(tensor, ()):
            if getattr(self.nodes[op], "variable", None) != tensor:
                return op
        return None

    @cached_property
    def between(self) -> dict[tuple[str, str], str]:
        """(producer op, consumer op) -> the tensor that carries the gradient back between them."""
        found = {}
        for tensor in self.made_by:
            op = self.producer(tensor)
            for consumer in self.used_by.get(tensor, ()):
                found[(op, consumer)] = tensor
        return found


# by id: (the graph, its node and edge counts when indexed, its index)
_kept: dict[int, tuple[weakref.ref[Graph], tuple[int, int], GraphIndex]] = {}
_lock = threading.Lock()


def index_of(graph: Graph) -> GraphIndex:
    """The graph's index, built on first use and kept while the graph lives and keeps its nodes
    and edges. The index holds no reference to its graph, so a graph is freed when its owner
    drops it (and its index with it), not later during another recording's work."""
    key, size = id(graph), (len(graph.nodes), len(graph.edges))
    with _lock:
        kept = _kept.get(key)
        if kept is not None and kept[0]() is graph and kept[1] == size:
            return kept[2]
    index = GraphIndex(graph)

    def forget(dead: weakref.ref[Graph]) -> None:
        # no lock: the collector may run this in a thread that holds it; dict calls are atomic
        entry = _kept.get(key)
        if entry is not None and entry[0] is dead:
            _kept.pop(key, None)

    with _lock:
        _kept[key] = (weakref.ref(graph, forget), size, index)
    return index
