"""The graph's index: producers and consumers read off the edges once per graph."""

from __future__ import annotations

import gc
import weakref

from app.graph_index import GraphIndex, index_of
from app.lessons import get_lesson
from app.schemas import OpNode, TensorNode
from app.tracing import trace_code
from tests.conftest import SAFE_PROGRAM, tensor_named


def test_producers_and_consumers_match_the_edges() -> None:
    graph = trace_code(SAFE_PROGRAM)  # y = (x + w) * (w + 1)
    index = index_of(graph)
    w, y = tensor_named(graph, "w").id, tensor_named(graph, "y").id
    used = [index.nodes[op] for op in index.used_by[w]]
    assert sorted(op.grad_fn for op in used if isinstance(op, OpNode)) == [
        "AddBackward0",
        "AddBackward0",
    ]
    (mul,) = index.made_by[y]
    assert index.nodes[mul].grad_fn == "MulBackward0" and index.computing_op(y) == mul
    assert index.computing_op(w) is None  # a leaf: only its AccumulateGrad points at it
    for edge in graph.edges:
        source, target = index.nodes[edge.source], index.nodes[edge.target]
        if isinstance(source, OpNode) and isinstance(target, TensorNode):
            assert source.id in index.made_by[target.id] and target.id in index.outputs[source.id]
        if isinstance(source, TensorNode) and isinstance(target, OpNode):
            assert target.id in index.used_by[source.id] and source.id in index.inputs[target.id]


def test_between_names_the_tensor_from_its_producer_to_each_consumer() -> None:
    graph = trace_code(get_lesson("shared_weight").code)
    index = index_of(graph)
    assert index.between
    for (producer, consumer), tensor in index.between.items():
        assert index.producer(tensor) == producer and consumer in index.used_by[tensor]


def test_one_index_per_graph_until_its_edges_change() -> None:
    graph = trace_code(SAFE_PROGRAM)
    first = index_of(graph)
    assert index_of(graph) is first
    assert index_of(graph.model_copy(deep=True)) is not first  # another graph, its own index
    graph.edges = graph.edges[:-1]
    assert index_of(graph) is not first and isinstance(index_of(graph), GraphIndex)


def _indexed_and_dropped() -> tuple[weakref.ref, int, bool]:
    """A recorded graph indexed, then dropped by its only owner (this frame)."""
    from app import graph_index

    graph = trace_code(SAFE_PROGRAM)
    index_of(graph)
    return weakref.ref(graph), id(graph), id(graph) in graph_index._kept


def test_an_index_never_keeps_its_graph_alive() -> None:
    from app import graph_index

    alive, key, was_kept = _indexed_and_dropped()
    gc.collect()
    # freed when its owner dropped it, and its index with it
    assert was_kept and alive() is None and key not in graph_index._kept
