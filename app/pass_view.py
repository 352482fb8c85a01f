"""The part of a graph that one backward pass belongs to, so a training loop shows one iteration."""

from __future__ import annotations

from app.layout import DotLimits, layout_graph
from app.schemas import Graph, Layout, OpNode, TensorNode


def splits_by_pass(graph: Graph) -> bool:
    """Whether the graph is drawn one pass at a time (programs with two or more passes)."""
    return len(graph.backward) >= 2


def pass_nodes(graph: Graph, pass_index: int) -> set[str]:
    """Ops the pass ran or whose forward call ran before it, and the tensors they touch."""
    last = len(graph.backward) - 1
    ops: set[str] = {step.node for step in graph.backward[pass_index].steps}
    for step in graph.forward:
        if step.after_pass == pass_index or (pass_index == last and step.after_pass > last):
            ops.add(step.node)
            ops.update(step.nodes)
    by_id = {n.id: n for n in graph.nodes}
    chosen = set(ops)
    for edge in graph.edges:
        if edge.source in ops and isinstance(by_id.get(edge.target), TensorNode):
            chosen.add(edge.target)
        if edge.target in ops and isinstance(by_id.get(edge.source), TensorNode):
            chosen.add(edge.source)
    for node in graph.nodes:  # a leaf's AccumulateGrad goes with the leaf
        if isinstance(node, OpNode) and node.variable in chosen:
            chosen.add(node.id)
    return chosen


def pass_subgraph(graph: Graph, pass_index: int | None) -> Graph:
    """The graph cut down to one pass's part; the whole graph when it is not split by pass."""
    if pass_index is None or not splits_by_pass(graph):
        return graph
    pass_index = min(max(pass_index, 0), len(graph.backward) - 1)
    keep = pass_nodes(graph, pass_index)
    return graph.model_copy(
        update={
            "nodes": [n for n in graph.nodes if n.id in keep],
            "edges": [e for e in graph.edges if e.source in keep and e.target in keep],
            "layout": None,
        }
    )


def layout_pass(
    graph: Graph,
    expanded: list[str] | set[str],
    pass_index: int | None,
    limits: DotLimits | None = None,
) -> Layout:
    """Positions of one pass's part of the graph (all of it for one-pass programs)."""
    shown = pass_index if splits_by_pass(graph) else None
    if shown is not None:
        shown = min(max(shown, 0), len(graph.backward) - 1)
    layout = layout_graph(pass_subgraph(graph, shown), expanded, limits)
    layout.pass_index = shown
    return layout


def pass_of_step(step: str | None, graph: Graph) -> int:
    """The pass a 'backward:P:N' step plays; forward steps and the default show the last pass."""
    if step and step.startswith("backward:"):
        return int(step.split(":")[1])
    if step and step.startswith("forward:"):
        index = int(step.split(":")[1])
        if index < len(graph.forward):
            return min(graph.forward[index].after_pass, max(0, len(graph.backward) - 1))
    return max(0, len(graph.backward) - 1)
