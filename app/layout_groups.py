"""The group (module, source line, fold of repeats) of each node, and the box that shows it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from app.graph_index import index_of
from app.repeat_fold import NO_FOLDS, Folds
from app.schemas import EXPAND_ALL, EXPAND_DEPTH_PREFIX, Graph, NoteMessage, OpNode, TensorNode

LINE_GROUP_THRESHOLD = 300  # module-less graphs larger than this are grouped by source line


@dataclass
class ViewUnits:
    """Which layout node shows each graph node, for one expanded set."""

    unit_of: dict[str, str] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    groups: set[str] = field(default_factory=set)
    path_of: dict[str, str | None] = field(default_factory=dict)
    folds: Folds = NO_FOLDS
    expanded: set[str] = field(default_factory=set)
    messages: list[NoteMessage] = field(default_factory=list)


def node_groups(graph: Graph, by_line: bool | None = None) -> dict[str, str | None]:
    """The module path (or 'line:N' group) each node belongs to, None for the top level.

    Ops outside modules are grouped by source line when there are many of them, or always
    when by_line is True."""
    index = index_of(graph)
    ops = [n for n in graph.nodes if isinstance(n, OpNode)]
    if by_line is None:
        by_line = sum(1 for op in ops if op.module is None) > LINE_GROUP_THRESHOLD
    group: dict[str, str | None] = {}
    for op in ops:
        if op.module:
            group[op.id] = op.module
        elif by_line and op.line is not None and op.variable is None:
            group[op.id] = f"line:{op.line}"
        else:
            group[op.id] = None
    for node in graph.nodes:
        if isinstance(node, TensorNode):
            made_by = index.computing_op(node.id)  # AccumulateGrad follows its leaf, not back
            if made_by is not None:
                group[node.id] = group[made_by]
            else:
                used_in = {group[c] for c in index.used_by.get(node.id, [])}
                group[node.id] = used_in.pop() if len(used_in) == 1 else None
    for op in ops:
        if op.variable is not None:
            group[op.id] = group.get(op.variable)
    return group


def collapsible_groups(groups: dict[str, str | None], folds: Folds = NO_FOLDS) -> list[str]:
    """Every module path prefix, line group and fold of repeats that can be expanded."""
    found: set[str] = set()
    for path in set(groups.values()):
        if path:
            found.update(folds.lineage(path))
    return sorted(found, key=lambda p: (len(folds.lineage(p)), p))


def _visible_group(path: str | None, expanded: set[str], folds: Folds = NO_FOLDS) -> str | None:
    """The collapsed group that hides a node at path, or None when the node is visible."""
    if not path:
        return None
    for group in folds.lineage(path):
        if group not in expanded:
            return group
    return None


def resolve_expanded(requested: set[str], collapsible: list[str], folds: Folds) -> set[str]:
    """The groups to open: the named ones, every group for '*', every group up to a depth for
    'depth:N' (a fold of repeats counts as a level, as it takes a click to open)."""
    chosen = {p for p in requested if p != EXPAND_ALL and not p.startswith(EXPAND_DEPTH_PREFIX)}
    if EXPAND_ALL in requested:
        return set(collapsible)
    depths = [
        int(p[len(EXPAND_DEPTH_PREFIX) :])
        for p in requested
        if p.startswith(EXPAND_DEPTH_PREFIX) and p[len(EXPAND_DEPTH_PREFIX) :].isdigit()
    ]
    if depths:
        chosen.update(p for p in collapsible if len(folds.lineage(p)) <= max(depths))
    return chosen


def view_units(
    graph: Graph, groups: dict[str, str | None], expanded: set[str], folds: Folds = NO_FOLDS
) -> ViewUnits:
    units = ViewUnits(path_of=groups, folds=folds, expanded=expanded)
    for node in graph.nodes:
        hidden_in = _visible_group(groups.get(node.id), expanded, folds)
        unit = node.id if hidden_in is None else f"group:{hidden_in}"
        if hidden_in is not None:
            units.groups.add(unit)
        units.unit_of[node.id] = unit
        units.members[unit].append(node.id)
    return units


def visible_edges(graph: Graph, units: ViewUnits) -> int:
    """How many distinct edges join the boxes shown (and that dot places)."""
    unit_of = units.unit_of
    pairs = {(unit_of[e.source], unit_of[e.target]) for e in graph.edges}
    pairs = {(a, b) for a, b in pairs if a != b}
    return len(pairs - detached_pairs(units, pairs))


def detached_edges(graph: Graph, units: ViewUnits) -> set[tuple[str, str]]:
    """The box pairs of the graph's edges that dot is not given (see detached_pairs)."""
    pairs = {(units.unit_of[e.source], units.unit_of[e.target]) for e in graph.edges}
    return detached_pairs(units, {(a, b) for a, b in pairs if a != b})


def detached_pairs(units: ViewUnits, pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Box pairs that dot is not given: into the second or a later iteration of an open fold
    from outside its iterations (a loop's shared weight into every step).

    Such an edge runs past every iteration above its target; dot's time explodes on them
    (200 of them beside a 400-box chain: 0.04 s without, over 60 s with), so the layout draws
    them itself, beside the boxes dot placed."""
    if not units.folds.members or not pairs:
        return set()
    iterations = fold_iterations(units)
    detached: set[tuple[str, str]] = set()
    for source, target in pairs:
        into = iterations(target)
        if into and any(i >= 1 and f not in iterations(source) for f, i in into.items()):
            detached.add((source, target))
    return detached


def fold_iterations(units: ViewUnits) -> Callable[[str], dict[str, int]]:
    """For a box: each fold it lies in -> the index of the iteration (member) holding it."""
    folds = units.folds
    position = {m: i for members in folds.members.values() for i, m in enumerate(members)}
    inside: dict[str, dict[str, int]] = {}

    def iterations(unit: str) -> dict[str, int]:
        if unit not in inside:
            path = unit.removeprefix("group:") if unit in units.groups else units.path_of.get(unit)
            chain = folds.lineage(path) if path else []
            inside[unit] = {folds.fold_of[g]: position[g] for g in chain if g in folds.fold_of}
        return inside[unit]

    return iterations
