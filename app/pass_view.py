"""The part of a graph that one backward pass belongs to, so a training loop shows one iteration."""

from __future__ import annotations

import re

from app.badges import badge_track, widest_badges
from app.column_wrap import DEFAULT_ASPECT
from app.dot_run import DotLimits
from app.dot_source import reading_order
from app.layout import layout_graph
from app.layout_boxes import BadgeRoom
from app.player_step import PlayerStep
from app.schemas import Graph, Layout, OpNode, TensorNode

_NUMBERED = re.compile(r" ?#\d+$")  # 'x * w #2': the number of a repeated label


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
    aspect: float = DEFAULT_ASPECT,
) -> Layout:
    """Positions of one pass's part of the graph (all of it for one-pass programs), for a frame
    of this aspect."""
    shown = pass_index if splits_by_pass(graph) else None
    room = None
    if shown is not None:
        shown = min(max(shown, 0), len(graph.backward) - 1)
        room = alike_badge_room(graph, shown)
    layout = layout_graph(pass_subgraph(graph, shown), expanded, limits, aspect, room=room)
    layout.pass_index = shown
    return layout


def _read_in_order(part: Graph) -> list[TensorNode | OpNode]:
    rank = reading_order(part)
    return sorted(part.nodes, key=lambda n: rank[n.id])


def _signature(nodes: list[TensorNode | OpNode]) -> tuple[tuple[object, ...], ...]:
    """What a pass's part draws, node by node in reading order, without ids or values."""
    return tuple(
        (n.kind, _NUMBERED.sub("", n.label), tuple(n.shape) if isinstance(n, TensorNode) else n.op)
        for n in nodes
    )


def alike_badge_room(graph: Graph, pass_index: int) -> BadgeRoom:
    """Badge room for the nodes of one pass, as wide as the widest badge of the same node in
    every pass whose part of the graph is drawn alike (a loop's iterations): those passes then
    get the same boxes, in the same order, and so the same positions."""
    widest = widest_badges(graph.badges or badge_track(graph))
    shown = _read_in_order(pass_subgraph(graph, pass_index))
    room = {n.id: widest[n.id] for n in shown if n.id in widest}
    signature = _signature(shown)
    for other in range(len(graph.backward)):
        if other == pass_index:
            continue
        nodes = _read_in_order(pass_subgraph(graph, other))
        if _signature(nodes) != signature:
            continue
        for mine, theirs in zip(shown, nodes, strict=True):
            chars, lines = widest.get(theirs.id, (0, 0))
            have = room.get(mine.id, (0, 0))
            if (chars, lines) != (0, 0):
                room[mine.id] = (max(have[0], chars), max(have[1], lines))
    return room


def pass_of_step(step: str | None, graph: Graph) -> int:
    """The pass a 'backward:P:N' step plays; forward steps and the default show the last pass."""
    last = max(0, len(graph.backward) - 1)
    if not step or not PlayerStep.is_step(step):
        return last
    played = PlayerStep.parse(step)
    if played.backward:
        return played.pass_index
    if played.index < len(graph.forward):
        return min(graph.forward[played.index].after_pass, last)
    return last
