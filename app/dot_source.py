"""The DOT source of a view: its boxes in reading order, frames of open groups, ordered edges."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from app.dot_run import DotLimits
from app.layout_boxes import DPI, BadgeRoom, LayoutBox, clip_label, group_title
from app.layout_groups import ViewUnits, detached_edges, fold_iterations
from app.layout_view import visible_boxes
from app.repeat_fold import NO_FOLDS, Folds
from app.schemas import Graph, OpNode

SAFE_DOT_NAME = re.compile(r"[A-Za-z0-9_:.\-]{1,200}")


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


@dataclass(frozen=True)
class DotStyle:
    """How to_dot dresses the graph: the layout's bare sized boxes, or an export's look."""

    header: tuple[str, ...] = (
        "graph [rankdir=TB, nodesep=0.2, ranksep=0.24, splines=spline, fontsize=14];",
        'node [shape=box, fixedsize=true, label=""];',
    )
    node_attributes: Callable[[LayoutBox], str] | None = None
    edge_attributes: Callable[[str, str], str] | None = None
    cluster_attributes: str = "margin=12;"
    footer: tuple[str, ...] = ()


def _size_attributes(box: LayoutBox) -> str:
    width, height = max(box.width, box.span), box.height + box.below
    return f"width={width / DPI:.3f}, height={height / DPI:.3f}"


def to_dot(
    graph: Graph,
    expanded: set[str],
    style: DotStyle | None = None,
    limits: DotLimits | None = None,
    room: BadgeRoom | None = None,
) -> tuple[str, dict[str, LayoutBox], ViewUnits]:
    """The DOT source of the visible part of the graph, with the boxes it places."""
    style = style or DotStyle()
    boxes, units = visible_boxes(graph, expanded, limits, room)
    expanded, folds = units.expanded, units.folds
    for i, box in enumerate(boxes.values()):  # user text never becomes a dot identifier
        box.dot_name = box.id if SAFE_DOT_NAME.fullmatch(box.id) else f"unit:{i}"
    name = {box_id: _quote(box.dot_name) for box_id, box in boxes.items()}
    node_attributes = style.node_attributes or _size_attributes
    lines = ["digraph G {", *(f"  {line}" for line in style.header)]
    tree = _cluster_tree(boxes, expanded, folds)

    first = _first_member(boxes, units, reading_order(graph))

    beside: dict[str, str] = {}  # AccumulateGrad box -> the leaf box it sits beside
    for node in graph.nodes:
        if isinstance(node, OpNode) and node.variable:
            a, b = units.unit_of[node.id], units.unit_of[node.variable]
            if a != b and a == node.id and b == node.variable:
                beside[a] = b
    frame_of = {box_id: path for path, ids in tree.items() for box_id in ids}

    def emit(path: str | None, indent: str) -> None:
        for box_id in sorted(tree.get(path, []), key=first.__getitem__):
            lines.append(f"{indent}{name[box_id]} [{node_attributes(boxes[box_id])}];")
        for a, b in beside.items():  # said outside the frame, it would pull both out of it
            if frame_of.get(a) == path and frame_of.get(b) == path:
                lines.append(f"{indent}{{rank=same; {name[b]}; {name[a]}}}")
        children = sorted(
            (p for p in tree if p is not None and open_parent(p, expanded, folds) == path),
            key=lambda p: (min((first[b] for b in tree[p]), default=(math.inf,)), p),
        )
        for child in children:
            lines.append(f"{indent}subgraph {cluster_name(child)} {{")
            label = _quote(clip_label(group_title(graph, child, folds)))
            lines.append(f"{indent}  label={label}; {style.cluster_attributes}")
            emit(child, indent + "  ")
            lines.append(f"{indent}}}")

    emit(None, "  ")
    by_id = {n.id: n for n in graph.nodes}
    rank = reading_order(graph)
    for a, b in beside.items():  # an AccumulateGrad sits beside its leaf
        if frame_of.get(a) != frame_of.get(b):
            lines.append(f"  {{rank=same; {name[b]}; {name[a]}}}")
    seen: set[tuple[str, str]] = set()
    detached = detached_edges(graph, units)
    for edge in sorted(graph.edges, key=lambda e: (rank[e.source], rank[e.target])):
        source, target = units.unit_of[edge.source], units.unit_of[edge.target]
        if source == target or (source, target) in seen:
            continue
        seen.add((source, target))
        if (source, target) in detached:  # app.layout draws these beside the boxes
            continue
        extra = style.edge_attributes(source, target) if style.edge_attributes else ""
        node = by_id[edge.source]
        if isinstance(node, OpNode) and node.variable == edge.target:
            attrs = ", ".join(a for a in ("dir=back, constraint=false", extra) if a)
            lines.append(f"  {name[target]} -> {name[source]} [{attrs}];")
        else:
            lines.append(f"  {name[source]} -> {name[target]}" + (f" [{extra}];" if extra else ";"))
    ranked = {
        (units.unit_of[e.source], units.unit_of[e.target])
        for e in graph.edges
        if not (isinstance(by_id[e.source], OpNode) and by_id[e.source].variable == e.target)
    }
    ranked = {(a, b) for a, b in ranked if a != b} - detached
    for a, b in order_edges(units, ranked, set(beside)):
        lines.append(f"  {name[a]} -> {name[b]} [style=invis];")
    lines.extend(f"  {line}" for line in style.footer)
    lines.append("}")
    return "\n".join(lines), boxes, units


def reading_order(graph: Graph) -> dict[str, tuple[float, ...]]:
    """A sort key per node: the order the program's calls used it (inputs, the op, its
    outputs), each leaf's AccumulateGrad right after the leaf, the rest in recorded order.

    dot places nodes in the order it reads them; the recorded order depends on what earlier
    passes already created (a loop's leaves come first from its second pass on), the calls'
    order does not, so every pass of a loop is read, and laid out, alike."""
    order: dict[str, tuple[float, ...]] = {}
    present = {n.id for n in graph.nodes}
    for step in graph.forward:
        if step.node not in present:  # a call of another pass: its leaves are read with ours
            continue
        for node_id in (*step.inputs, step.node, *step.nodes, *step.outputs):
            if node_id in present and node_id not in order:
                order[node_id] = (len(order), 0)
    for node in graph.nodes:
        if isinstance(node, OpNode) and node.variable in order and node.id not in order:
            order[node.id] = (order[node.variable][0], 1)
    for node in graph.nodes:
        if node.id not in order:
            order[node.id] = (len(graph.forward) * 4 + len(order), 0)
    return order


def _first_member(
    boxes: dict[str, LayoutBox], units: ViewUnits, rank: dict[str, tuple[float, ...]]
) -> dict[str, tuple[float, ...]]:
    """Each box's place in the reading order: that of its first member."""
    return {box_id: min(rank[m] for m in units.members[box_id]) for box_id in boxes}


def cluster_name(path: str) -> str:
    """A DOT-safe cluster id that still tells its module path."""
    return f"cluster_{path.encode('utf-8').hex()}"


def cluster_path(name: str) -> str:
    """The module path of a cluster id made by cluster_name."""
    return bytes.fromhex(name.removeprefix("cluster_")).decode("utf-8")


def open_parent(path: str, expanded: set[str], folds: Folds = NO_FOLDS) -> str | None:
    parent = folds.parent(path)
    while parent and parent not in expanded:
        parent = folds.parent(parent)
    return parent


def _cluster_tree(
    boxes: dict[str, LayoutBox], expanded: set[str], folds: Folds = NO_FOLDS
) -> dict[str | None, list[str]]:
    """Expanded group -> the boxes drawn directly inside its frame (None: top level)."""
    tree: dict[str | None, list[str]] = defaultdict(list)
    for box in boxes.values():
        path = box.module
        if box.kind in ("module", "line", "fold") and box.module:
            path = folds.parent(box.module)
        while path and path not in expanded:
            path = folds.parent(path)
        tree[path].append(box.id)
    for path in list(tree):  # frames that hold only expanded sub-modules still need drawing
        parent = open_parent(path, expanded, folds) if path else None
        while parent is not None and parent not in tree:
            tree[parent] = []
            parent = open_parent(parent, expanded, folds)
    return tree


ORDER_EDGES_PER_STEP = 16  # invisible edges that put one iteration below the one before


def order_edges(
    units: ViewUnits, ranked: set[tuple[str, str]], beside: set[str]
) -> list[tuple[str, str]]:
    """Invisible edges from the last boxes of each open fold's iteration to the first boxes of
    the next, so iterations stack top to bottom instead of in a staircase.

    dot ranks an iteration's first boxes (a step's input, a weight's transpose) beside the end
    of the iteration before, and two frames sharing a rank go side by side: 50 iterations ran
    33,000 px wide. ranked holds the box pairs dot ranks by; beside, the AccumulateGrad boxes
    that sit beside their leaf, which neither start nor end an iteration (an edge from one, at
    the top of its iteration, would run down past all of it)."""
    folds = units.folds
    open_folds = [f for f in folds.members if f in units.expanded]
    if not open_folds:
        return []
    iterations = fold_iterations(units)
    steps: dict[str, dict[int, set[str]]] = {f: defaultdict(set) for f in open_folds}
    for box in set(units.unit_of.values()):
        for fold, index in iterations(box).items():
            if fold in steps:
                steps[fold][index].add(box)
    step_of = {
        (fold, box): index for fold, by in steps.items() for index, bs in by.items() for box in bs
    }
    edges: list[tuple[str, str]] = []
    for fold in open_folds:
        inner: dict[int, list[tuple[str, str]]] = defaultdict(list)
        entries: dict[int, set[str]] = defaultdict(set)
        for a, b in ranked:
            i, j = step_of.get((fold, a)), step_of.get((fold, b))
            if j is None:
                continue
            if i == j:
                inner[j].append((a, b))
            else:
                entries[j].add(b)
        indices = sorted(steps[fold])
        for before, after in zip(indices, indices[1:], strict=False):
            ends = _ends(steps[fold][before], inner[before], beside)
            starts = _floating_starts(steps[fold][after], inner[after], entries[after], beside)
            edges.extend([(a, b) for a in ends for b in starts][:ORDER_EDGES_PER_STEP])
    return edges


def _ends(boxes: set[str], inner: list[tuple[str, str]], beside: set[str]) -> list[str]:
    """The boxes of an iteration that nothing else in it is ranked below."""
    has_out = {a for a, _ in inner}
    return sorted(b for b in boxes if b not in has_out and b not in beside)


def _floating_starts(
    boxes: set[str], inner: list[tuple[str, str]], entries: set[str], beside: set[str]
) -> list[str]:
    """The first boxes of an iteration that dot would rank above where the iteration is
    entered (a step's own input, a weight's transpose): as far from its end as an entry or
    farther."""
    below: dict[str, list[str]] = defaultdict(list)
    waiting: dict[str, int] = dict.fromkeys(boxes, 0)
    for a, b in inner:
        below[b].append(a)  # walked from the end upwards
        waiting[a] += 1
    height = dict.fromkeys(boxes, 0)
    ready = [box for box, count in waiting.items() if count == 0]
    while ready:
        box = ready.pop()
        for above in below[box]:
            height[above] = max(height[above], height[box] + 1)
            waiting[above] -= 1
            if waiting[above] == 0:
                ready.append(above)
    has_in = {b for _, b in inner}
    entry = max((height[b] for b in entries if b in height), default=0)
    return sorted(b for b in boxes if b not in has_in and b not in beside and height[b] >= entry)
