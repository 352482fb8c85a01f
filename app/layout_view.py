"""The boxes one view shows, folded back until dot may lay it out within its limits."""

from __future__ import annotations

from collections import defaultdict

from app.dot_run import DotLimits
from app.errors import LimitExceeded
from app.layout_boxes import BadgeRoom, LayoutBox, sized_boxes
from app.layout_groups import (
    ViewUnits,
    collapsible_groups,
    detached_pairs,
    node_groups,
    resolve_expanded,
    view_units,
    visible_edges,
)
from app.repeat_fold import Folds, fold_groups
from app.schemas import Graph, NoteMessage, OpNode

MAX_VISIBLE = 2500


def layout_cost(graph: Graph, units: ViewUnits) -> int:
    """A cheap estimate of dot's work on a view: its boxes plus the virtual nodes dot adds
    along every edge that spans more than one rank. Linear in the graph.

    dot's time grows much faster than its input where many long edges run side by side (140
    `torch.cat` of all earlier tensors made it run out of time on a few hundred boxes); the
    virtual nodes are what it orders and places. Ranks are longest paths from the sources,
    each box then pulled down to just above its first consumer, as dot's ranking does; the
    edge beside a leaf's AccumulateGrad does not constrain ranks and is left out."""
    unit_of = units.unit_of
    by_id = {n.id: n for n in graph.nodes}
    pairs: set[tuple[str, str]] = set()
    for edge in graph.edges:
        node = by_id.get(edge.source)
        if isinstance(node, OpNode) and node.variable == edge.target:
            continue
        pair = (unit_of[edge.source], unit_of[edge.target])
        if pair[0] != pair[1]:
            pairs.add(pair)
    pairs -= detached_pairs(units, pairs)
    boxes = set(unit_of.values())
    successors: dict[str, list[str]] = defaultdict(list)
    waiting = dict.fromkeys(boxes, 0)
    for source, target in pairs:
        successors[source].append(target)
        waiting[target] += 1
    rank = dict.fromkeys(boxes, 0)
    ready = [box for box, count in waiting.items() if count == 0]
    order: list[str] = []
    while ready:
        box = ready.pop()
        order.append(box)
        for target in successors[box]:
            rank[target] = max(rank[target], rank[box] + 1)
            waiting[target] -= 1
            if waiting[target] == 0:
                ready.append(target)
    for box in reversed(order):  # boxes in a cycle keep the rank their ranked inputs gave
        if successors[box]:
            rank[box] = max(rank[box], min(rank[t] for t in successors[box]) - 1)
    return len(boxes) + sum(max(0, abs(rank[t] - rank[s]) - 1) for s, t in pairs)


def visible_boxes(
    graph: Graph,
    expanded: set[str],
    limits: DotLimits | None = None,
    room: BadgeRoom | None = None,
) -> tuple[dict[str, LayoutBox], ViewUnits]:
    """The boxes shown with the given groups expanded ('*' and 'depth:N' resolved), and which
    box shows each node; room, when given, is the badge room kept under each node (by default,
    its widest badge).

    Repeats are folded (app.repeat_fold). A view past the limits is folded back until it fits
    (the later iterations of each open fold closed, then the folds), with a note saying so;
    past the edge cap, ops outside modules are grouped by source line; a view still past the
    limits is LimitExceeded."""
    limits = limits or DotLimits()
    units: ViewUnits | None = None
    previous: dict[str, str | None] | None = None
    for by_line in (None, True):
        groups = node_groups(graph, by_line=by_line)
        if groups == previous:
            continue
        previous = groups
        groups, folds = fold_groups(graph, groups)
        wanted = resolve_expanded(expanded, collapsible_groups(groups, folds), folds)
        units = view_units(graph, groups, wanted, folds)
        if not _fits(graph, units, limits):
            units = _fold_to_fit(graph, groups, folds, wanted, limits) or units
        if _fits(graph, units, limits):
            return sized_boxes(graph, units, groups, room), units
    assert units is not None
    edges = visible_edges(graph, units)
    if edges > limits.max_edges:
        raise LimitExceeded(
            "edges",
            f"{edges} edges would be visible; the limit is {limits.max_edges}: "
            "collapse modules or line groups",
        )
    cost = layout_cost(graph, units)
    if cost > limits.max_cost:
        raise LimitExceeded(
            "layout_cost",
            f"this view would cost graphviz about {cost} placements; the limit is "
            f"{limits.max_cost} (set AE_LAYOUT_MAX_COST): collapse modules or line groups",
        )
    raise LimitExceeded(
        "layout_nodes",
        f"{len(units.members)} boxes would be visible; the limit is {MAX_VISIBLE}: "
        "collapse modules",
    )


FOLDED_NOTES = {
    "foldedLater": "The view asked for was too big to lay out: every fold of repeats shows its "
    "first {open} iterations open and the others closed.",
    "foldedAll": "The view asked for was too big to lay out: repeats are shown folded.",
}


def _fold_to_fit(
    graph: Graph,
    groups: dict[str, str | None],
    folds: Folds,
    wanted: set[str],
    limits: DotLimits,
) -> ViewUnits | None:
    """The view asked for folded back until it fits, with a note that says so: as many of
    each open fold's first iterations open as fit (at least one), else every fold closed."""
    if not any(fold in wanted for fold in folds.members):
        return None
    position = {m: i for members in folds.members.values() for i, m in enumerate(members)}

    def opened(keep: int) -> ViewUnits:  # groups inside a fold's later iterations closed
        chosen = {p for p in wanted if all(position.get(g, 0) < keep for g in folds.lineage(p))}
        return view_units(graph, groups, chosen, folds)

    low, high = 0, max(len(m) for f, m in folds.members.items() if f in wanted)
    best: ViewUnits | None = None
    while low < high:  # the most iterations kept open that still fits
        keep = (low + high + 1) // 2
        units = opened(keep)
        if _fits(graph, units, limits):
            low, best = keep, units
        else:
            high = keep - 1
    if best is not None:
        text = FOLDED_NOTES["foldedLater"].format(open=low)
        best.messages.append(NoteMessage(key="foldedLater", params={"open": low}, text=text))
        return best
    closed = {p for p in wanted if not any(g in folds.members for g in folds.lineage(p))}
    units = view_units(graph, groups, closed, folds)
    units.messages.append(NoteMessage(key="foldedAll", text=FOLDED_NOTES["foldedAll"]))
    return units


def _fits(graph: Graph, units: ViewUnits, limits: DotLimits) -> bool:
    """Whether dot may lay out this view: within the edge cap, the cost cap and the box cap."""
    return (
        len(units.members) <= MAX_VISIBLE
        and visible_edges(graph, units) <= limits.max_edges
        and layout_cost(graph, units) <= limits.max_cost
    )
