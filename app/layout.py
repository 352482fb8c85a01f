"""Graph -> Layout: group by module (collapsed unless expanded), place the visible part with dot."""

from __future__ import annotations

import json
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import threading
import unicodedata
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from app import dot_spare
from app.badges import badge_track, widest_badges
from app.column_wrap import DEFAULT_ASPECT, Extent, wrap_columns
from app.errors import LimitExceeded
from app.repeat_fold import NO_FOLDS, Folds, fold_groups, fold_title, is_fold
from app.schemas import (
    EXPAND_ALL,
    EXPAND_DEPTH_PREFIX,
    Graph,
    Layout,
    LayoutCluster,
    LayoutEdge,
    LayoutNode,
    NoteMessage,
    OpNode,
    TensorNode,
)

_POINT_XY = re.compile(r"(-?\d+(?:\.\d+)?),(-?\d+(?:\.\d+)?)")
DPI = 72.0  # dot works in points; at 72 dpi a point is a CSS pixel
FONT_PX = 16.0  # node titles; on a 960×540 slide no text may drop under 14 px
SMALL_FONT_PX = 14.0
BOX_HEIGHT = 46.0
BADGE_FONT_PX = 14.0  # the badges under boxes (graph-view.js draws them the same way)
BADGE_GAP_PX = 16.0
BADGE_LINE_PX = 18.0
LINE_GROUP_THRESHOLD = 300  # module-less graphs larger than this are grouped by source line
MAX_VISIBLE = 2500
SAFE_DOT_NAME = re.compile(r"[A-Za-z0-9_:.\-]{1,200}")
LABEL_CHARS = 80  # longest text of a box or frame label that reaches dot, SVG or PNG
DOT_NICE = 10  # dot yields the CPU to the server and to short traces
INSTALL_HINT = (
    "graphviz's 'dot' was not found: install graphviz (Debian/Ubuntu: apt-get install graphviz; "
    "macOS: brew install graphviz) to see graph layouts"
)


class LayoutUnavailable(Exception):
    """graphviz's dot is not installed."""


class LayoutBusy(Exception):
    """Every dot slot stayed taken for longer than a layout may wait (HTTP 503)."""


class DotFailed(Exception):
    """dot exited with an error that is neither a time nor a memory limit."""


@dataclass(frozen=True)
class DotLimits:
    """Bounds of one dot run: wall and CPU seconds, address space, visible edges."""

    seconds: float = 20.0
    memory_mb: int = 1024
    max_edges: int = 20_000
    max_cost: int = 4_000  # layout_cost past which dot is not started


# One dot per core at a time, for the whole process: a layout past that waits for a slot.
DOT_SLOTS = threading.BoundedSemaphore(len(os.sched_getaffinity(0)) or 1)


def dot_available() -> bool:
    """Whether graphviz's dot is on PATH."""
    return shutil.which("dot") is not None


def text_width(text: str, font_px: float) -> float:
    """Approximate rendered width of text in px (wide characters count double)."""
    units = sum(1.0 if unicodedata.east_asian_width(ch) in "WF" else 0.6 for ch in text)
    return units * font_px


def clip_label(text: str, limit: int = LABEL_CHARS) -> str:
    """Text cut to limit characters (with an ellipsis), control and non-characters replaced."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    if text.isprintable() and text.isascii():
        return text
    return "".join(
        "\ufffd"
        if unicodedata.category(ch) in ("Cc", "Cs") or ch in "\ufffe\uffff"
        else (" " if ch in "\u2028\u2029" else ch)
        for ch in text
    )


def shape_text(shape: list[int]) -> str:
    """'2×3' for [2, 3], 'scalar' for []."""
    return "×".join(str(s) for s in shape) if shape else "scalar"


def node_lines(node: TensorNode | OpNode, by_id: dict[str, TensorNode | OpNode]) -> tuple[str, str]:
    """The two text lines a node shows: name and shape, or op and grad_fn."""
    if isinstance(node, TensorNode):
        return node.label, f"{shape_text(node.shape)} {node.dtype}"
    if node.variable is not None:  # the leaf's current name, not the one it had at creation
        return "AccumulateGrad", f"→ {by_id[node.variable].label}.grad"
    if node.failed:  # the call that raised: no grad_fn was ever made
        return node.label, "✗"
    return node.label, node.grad_fn or ""


def module_title(graph: Graph, path: str) -> str:
    """A module box's path as the program names it ('model.0' for the box '0')."""
    return graph.module_paths.get(path, path)


def group_title(graph: Graph, path: str, folds: Folds = NO_FOLDS) -> str:
    """An open group's frame text: the module's path, 'line 9', or a fold's 'layers × 48'."""
    if path in folds.members:
        return fold_title(graph, path, folds)
    if path.startswith("line:"):
        return f"line {path[5:]}"
    return module_title(graph, path)


def box_size(title: str, subtitle: str, pill: bool = False) -> tuple[float, float]:
    """Width and height in px of a box holding a title and a smaller subtitle."""
    width = max(text_width(title, FONT_PX), text_width(subtitle, SMALL_FONT_PX)) + 24
    if pill:  # rounded ends take half the height on each side
        width += BOX_HEIGHT / 3
    return max(64.0, width), BOX_HEIGHT


@dataclass
class _Units:
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
    by_id = {n.id: n for n in graph.nodes}
    producers: dict[str, str] = {}
    consumers: dict[str, list[str]] = defaultdict(list)
    for edge in graph.edges:
        source, target = by_id[edge.source], by_id[edge.target]
        if isinstance(source, OpNode) and isinstance(target, TensorNode):
            if source.variable != target.id:  # AccumulateGrad follows its leaf, not the reverse
                producers.setdefault(target.id, source.id)
        elif isinstance(source, TensorNode) and isinstance(target, OpNode):
            consumers[source.id].append(target.id)
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
            if node.id in producers:
                group[node.id] = group[producers[node.id]]
            else:
                used_in = {group[c] for c in consumers.get(node.id, [])}
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


def _units(
    graph: Graph, groups: dict[str, str | None], expanded: set[str], folds: Folds = NO_FOLDS
) -> _Units:
    units = _Units(path_of=groups, folds=folds, expanded=expanded)
    for node in graph.nodes:
        hidden_in = _visible_group(groups.get(node.id), expanded, folds)
        unit = node.id if hidden_in is None else f"group:{hidden_in}"
        if hidden_in is not None:
            units.groups.add(unit)
        units.unit_of[node.id] = unit
        units.members[unit].append(node.id)
    return units


def _visible_edges(graph: Graph, units: _Units) -> int:
    """How many distinct edges join the boxes shown (and that dot places)."""
    unit_of = units.unit_of
    pairs = {(unit_of[e.source], unit_of[e.target]) for e in graph.edges}
    pairs = {(a, b) for a, b in pairs if a != b}
    return len(pairs - detached_pairs(units, pairs))


def detached_pairs(units: _Units, pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Box pairs that dot is not given: into the second or a later iteration of an open fold
    from outside its iterations (a loop's shared weight into every step).

    Such an edge runs past every iteration above its target; dot's time explodes on them
    (200 of them beside a 400-box chain: 0.04 s without, over 60 s with), so the layout draws
    them itself, beside the boxes dot placed."""
    if not units.folds.members or not pairs:
        return set()
    iterations = _iterations(units)
    detached: set[tuple[str, str]] = set()
    for source, target in pairs:
        into = iterations(target)
        if into and any(i >= 1 and f not in iterations(source) for f, i in into.items()):
            detached.add((source, target))
    return detached


def _iterations(units: _Units) -> Callable[[str], dict[str, int]]:
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


ORDER_EDGES_PER_STEP = 16  # invisible edges that put one iteration below the one before


def order_edges(
    units: _Units, ranked: set[tuple[str, str]], beside: set[str]
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
    iterations = _iterations(units)
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


def layout_cost(graph: Graph, units: _Units) -> int:
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


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


@dataclass
class _Box:
    id: str
    kind: str
    label: str
    detail: str
    width: float
    height: float
    module: str | None
    members: list[str]
    parameters: int | None = None
    shape: list[int] | None = None
    dot_name: str = ""
    below: float = 0.0  # room kept under the box for its value and gradient badges
    span: float = 0.0  # width the widest badge needs


BadgeRoom = dict[str, tuple[int, int]]  # node id -> (most characters on a line, most lines)


def _reserve_badges(graph: Graph, boxes: dict[str, _Box], room: BadgeRoom | None) -> None:
    """Keep room under each box for the widest badge any step shows, so none covers a node."""
    if room is None:
        room = widest_badges(graph.badges or badge_track(graph))
    for node, (chars, lines) in room.items():
        box = boxes.get(node)
        if box is None:
            continue
        box.span = chars * BADGE_FONT_PX * 0.62 + 8
        box.below = BADGE_GAP_PX + 4 + (lines - 1) * BADGE_LINE_PX
    for node in graph.nodes:  # an AccumulateGrad beside its leaf keeps its top level with it
        if isinstance(node, OpNode) and node.variable in boxes and node.id in boxes:
            boxes[node.id].below = max(boxes[node.id].below, boxes[node.variable].below)


def _boxes(graph: Graph, units: _Units, groups: dict[str, str | None]) -> dict[str, _Box]:
    by_id = {n.id: n for n in graph.nodes}
    boxes: dict[str, _Box] = {}
    leaving: dict[str, list[int]] = {}
    for edge in graph.edges:
        source_unit = units.unit_of[edge.source]
        if source_unit != units.unit_of[edge.target] and source_unit in units.groups:
            node = by_id[edge.source]
            if isinstance(node, TensorNode):
                leaving[source_unit] = node.shape
    for unit, members in units.members.items():
        if unit in units.groups:
            path = unit.removeprefix("group:")
            params = sum(
                math.prod(by_id[m].shape)
                for m in members
                if isinstance(by_id[m], TensorNode) and by_id[m].is_parameter
            )
            shape = leaving.get(unit)
            subtitle = f"{len(members)} nodes"
            if params:
                subtitle += f" · {params:,} params"
            if shape is not None:
                subtitle += f" → {shape_text(shape)}"
            if is_fold(path):
                title = fold_title(graph, path, units.folds)
            elif path.startswith("line:"):
                title = f"line {path[5:]}"
            else:
                title = module_title(graph, path)
                if path in graph.modules:
                    title = f"{title} · {graph.modules[path]}"
            title = clip_label(title)
            subtitle = clip_label(subtitle)
            width, height = box_size(f"▸ {title}", subtitle)  # drawn with a ▸ before it
            kind = "fold" if is_fold(path) else "line" if path.startswith("line:") else "module"
            boxes[unit] = _Box(
                unit, kind, title, subtitle, width, height + 8, path, members, params, shape
            )
        else:
            node = by_id[unit]
            title, subtitle = (clip_label(text) for text in node_lines(node, by_id))
            width, height = box_size(title, subtitle, pill=isinstance(node, OpNode))
            boxes[unit] = _Box(
                unit, node.kind, title, subtitle, width, height, groups.get(unit), []
            )
    return boxes


def _cluster_tree(
    boxes: dict[str, _Box], expanded: set[str], folds: Folds = NO_FOLDS
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
        parent = _parent(path, expanded, folds) if path else None
        while parent is not None and parent not in tree:
            tree[parent] = []
            parent = _parent(parent, expanded, folds)
    return tree


@dataclass(frozen=True)
class DotStyle:
    """How to_dot dresses the graph: the layout's bare sized boxes, or an export's look."""

    header: tuple[str, ...] = (
        "graph [rankdir=TB, nodesep=0.2, ranksep=0.24, splines=spline, fontsize=14];",
        'node [shape=box, fixedsize=true, label=""];',
    )
    node_attributes: Callable[[_Box], str] | None = None
    edge_attributes: Callable[[str, str], str] | None = None
    cluster_attributes: str = "margin=12;"
    footer: tuple[str, ...] = ()


def _size_attributes(box: _Box) -> str:
    width, height = max(box.width, box.span), box.height + box.below
    return f"width={width / DPI:.3f}, height={height / DPI:.3f}"


def visible_boxes(
    graph: Graph,
    expanded: set[str],
    limits: DotLimits | None = None,
    room: BadgeRoom | None = None,
) -> tuple[dict[str, _Box], _Units]:
    """The boxes shown with the given groups expanded ('*' and 'depth:N' resolved), and which
    box shows each node; room, when given, is the badge room kept under each node (by default,
    its widest badge).

    Repeats are folded (app.repeat_fold). A view past the limits is folded back until it fits
    (the later iterations of each open fold closed, then the folds), with a note saying so;
    past the edge cap, ops outside modules are grouped by source line; a view still past the
    limits is LimitExceeded."""
    limits = limits or DotLimits()
    units: _Units | None = None
    previous: dict[str, str | None] | None = None
    for by_line in (None, True):
        groups = node_groups(graph, by_line=by_line)
        if groups == previous:
            continue
        previous = groups
        groups, folds = fold_groups(graph, groups)
        wanted = resolve_expanded(expanded, collapsible_groups(groups, folds), folds)
        units = _units(graph, groups, wanted, folds)
        if not _fits(graph, units, limits):
            units = _fold_to_fit(graph, groups, folds, wanted, limits) or units
        if _fits(graph, units, limits):
            return _sized_boxes(graph, units, groups, room), units
    assert units is not None
    edges = _visible_edges(graph, units)
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
) -> _Units | None:
    """The view asked for folded back until it fits, with a note that says so: as many of
    each open fold's first iterations open as fit (at least one), else every fold closed."""
    if not any(fold in wanted for fold in folds.members):
        return None
    position = {m: i for members in folds.members.values() for i, m in enumerate(members)}

    def opened(keep: int) -> _Units:  # groups inside a fold's later iterations closed
        chosen = {p for p in wanted if all(position.get(g, 0) < keep for g in folds.lineage(p))}
        return _units(graph, groups, chosen, folds)

    low, high = 0, max(len(m) for f, m in folds.members.items() if f in wanted)
    best: _Units | None = None
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
    units = _units(graph, groups, closed, folds)
    units.messages.append(NoteMessage(key="foldedAll", text=FOLDED_NOTES["foldedAll"]))
    return units


def _fits(graph: Graph, units: _Units, limits: DotLimits) -> bool:
    """Whether dot may lay out this view: within the edge cap, the cost cap and the box cap."""
    return (
        len(units.members) <= MAX_VISIBLE
        and _visible_edges(graph, units) <= limits.max_edges
        and layout_cost(graph, units) <= limits.max_cost
    )


def _sized_boxes(
    graph: Graph, units: _Units, groups: dict[str, str | None], room: BadgeRoom | None
) -> dict[str, _Box]:
    boxes = _boxes(graph, units, groups)
    _reserve_badges(graph, boxes, room)
    return boxes


def to_dot(
    graph: Graph,
    expanded: set[str],
    style: DotStyle | None = None,
    limits: DotLimits | None = None,
    room: BadgeRoom | None = None,
) -> tuple[str, dict[str, _Box], _Units]:
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
            (p for p in tree if p is not None and _parent(p, expanded, folds) == path),
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
    detached = detached_pairs(
        units, {(units.unit_of[e.source], units.unit_of[e.target]) for e in graph.edges}
    )
    for edge in sorted(graph.edges, key=lambda e: (rank[e.source], rank[e.target])):
        source, target = units.unit_of[edge.source], units.unit_of[edge.target]
        if source == target or (source, target) in seen:
            continue
        seen.add((source, target))
        if (source, target) in detached:  # the layout draws these beside (_side_edges)
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
    boxes: dict[str, _Box], units: _Units, rank: dict[str, tuple[float, ...]]
) -> dict[str, tuple[float, ...]]:
    """Each box's place in the reading order: that of its first member."""
    return {box_id: min(rank[m] for m in units.members[box_id]) for box_id in boxes}


def cluster_name(path: str) -> str:
    """A DOT-safe cluster id that still tells its module path."""
    return f"cluster_{path.encode('utf-8').hex()}"


def cluster_path(name: str) -> str:
    """The module path of a cluster id made by cluster_name."""
    return bytes.fromhex(name.removeprefix("cluster_")).decode("utf-8")


def _parent(path: str, expanded: set[str], folds: Folds = NO_FOLDS) -> str | None:
    parent = folds.parent(path)
    while parent and parent not in expanded:
        parent = folds.parent(parent)
    return parent


def _dot_rlimits(limits: DotLimits) -> Callable[[], None]:
    """A preexec_fn that bounds dot's address space and CPU time and lowers its priority."""
    memory, cpu = _limit_values(limits)

    def apply() -> None:  # runs in the forked child before exec: plain system calls only
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.nice(DOT_NICE)

    return apply


def _limit_values(limits: DotLimits) -> tuple[int, int]:
    """Address-space bytes and CPU seconds of one dot run."""
    return limits.memory_mb * 1024 * 1024, max(1, math.ceil(limits.seconds) + 1)


def dot_command(fmt: str, limits: DotLimits) -> tuple[list[str], Callable[[], None] | None]:
    """The argv that runs dot within limits, and the preexec_fn it needs, if any.

    util-linux's prlimit and coreutils' nice set the limits when present: then the server,
    a large process, is not forked with a Python preexec_fn (measured: 50 ms against 28 ms
    per run for a small graph). Without them the limits are set in a preexec_fn."""
    prlimit, nice = shutil.which("prlimit"), shutil.which("nice")
    if prlimit is None or nice is None:
        return ["dot", f"-T{fmt}"], _dot_rlimits(limits)
    memory, cpu = _limit_values(limits)
    wrapper = [prlimit, f"--as={memory}", f"--cpu={cpu}:{cpu + 1}", "--core=0", "--"]
    return [*wrapper, nice, "-n", str(DOT_NICE), "dot", f"-T{fmt}"], None


def run_dot(source: str, fmt: str = "json0", limits: DotLimits | None = None) -> bytes:
    """Output of graphviz dot for a DOT source, run within limits, at most one per core.

    A json0 layout takes the warm spare dot of its command when one waits (app.dot_spare), and
    leaves a new one warming up for the next layout.

    LimitExceeded('layout_time' | 'layout_memory'), LayoutBusy when no slot frees in time,
    DotFailed for any other error of dot."""
    if not dot_available():
        raise LayoutUnavailable(INSTALL_HINT)
    limits = limits or DotLimits()
    if not DOT_SLOTS.acquire(timeout=limits.seconds):
        raise LayoutBusy(f"every layout slot stayed busy for {limits.seconds:g} s")
    argv, preexec = dot_command(fmt, limits)
    key = (tuple(argv), limits, dot_spare.dot_fingerprint())
    try:
        process = dot_spare.SPARES.take(key) or dot_spare.start_dot(argv, preexec)
        try:
            stdout, stderr = process.communicate(
                source.encode("utf-8", "replace"), timeout=limits.seconds
            )
        except subprocess.TimeoutExpired:
            dot_spare.discard(process)
            raise _time_limit(limits) from None
    finally:
        DOT_SLOTS.release()
        if fmt == "json0":  # the next layout finds a warm dot waiting
            dot_spare.SPARES.refill(key, argv, preexec, limits.seconds)
    if process.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        raise _time_limit(limits)
    if process.returncode != 0:
        error = stderr.decode(errors="replace")
        if process.returncode < 0 or "memory" in error.lower() or "alloc" in error.lower():
            raise LimitExceeded(
                "layout_memory",
                f"graphviz needed more than {limits.memory_mb} MB: collapse modules",
            )
        raise DotFailed(f"graphviz failed: {error[:300]}")
    return stdout


def _time_limit(limits: DotLimits) -> LimitExceeded:
    return LimitExceeded(
        "layout_time", f"graphviz took longer than {limits.seconds:g} s: collapse modules"
    )


def _spline_path(pos: str, height: float) -> str:
    """SVG path data from a dot edge 'pos' ('e,x,y x,y x,y ...'), y flipped."""
    end = None
    points: list[tuple[float, float]] = []
    for token in pos.split():
        if token.startswith("e,"):
            _, x, y = token.split(",")
            end = (float(x), height - float(y))
        elif token.startswith("s,"):
            continue
        else:
            x, y = token.split(",")
            points.append((float(x), height - float(y)))
    if not points:
        return ""
    parts = [f"M{points[0][0]:.1f},{points[0][1]:.1f}"]
    for i in range(1, len(points) - 2, 3):
        (ax, ay), (bx, by), (cx, cy) = points[i], points[i + 1], points[i + 2]
        parts.append(f"C{ax:.1f},{ay:.1f} {bx:.1f},{by:.1f} {cx:.1f},{cy:.1f}")
    if end is not None:
        parts.append(f"L{end[0]:.1f},{end[1]:.1f}")
    return " ".join(parts)


def _extents(nodes: list[LayoutNode], boxes: dict[str, _Box]) -> dict[str, Extent]:
    """What each placed box covers with the badge room reserved under and beside it."""
    extents: dict[str, Extent] = {}
    for node in nodes:
        box = boxes[node.id]
        wide = max(box.width, box.span)
        left = node.x + node.width / 2 - wide / 2
        extents[node.id] = Extent(left, node.y, left + wide, node.y + node.height + box.below)
    return extents


def layout_graph(
    graph: Graph,
    expanded: list[str] | set[str] | None = None,
    limits: DotLimits | None = None,
    aspect: float = DEFAULT_ASPECT,
    room: BadgeRoom | None = None,
) -> Layout:
    """Positions for the graph with the given modules expanded (all others collapsed), a tall
    graph wrapped into columns where that shows it larger in a frame of this aspect; room
    overrides the badge room kept under nodes.

    A view with open folds that dot cannot lay out within its time or memory is laid out again
    with its folds closed, and says so."""
    wanted = set(expanded or ())
    source, boxes, units = to_dot(graph, wanted, limits=limits, room=room)
    try:
        placed = json.loads(run_dot(source, limits=limits))
    except LimitExceeded as exc:
        closed = _folds_closed(units)
        if exc.limit not in ("layout_time", "layout_memory") or closed is None:
            raise
        layout = layout_graph(graph, closed, limits, aspect, room)
        note = NoteMessage(key="foldedAll", text=FOLDED_NOTES["foldedAll"])
        layout.messages = [m for m in layout.messages if m.key != note.key] + [note]
        return layout
    by_name = {box.dot_name: box for box in boxes.values()}
    x0, y0, x1, y1 = (float(v) for v in placed["bb"].split(","))
    width, height = x1 - x0, y1 - y0
    names: dict[int, str] = {}
    nodes: list[LayoutNode] = []
    clusters: list[LayoutCluster] = []
    for obj in placed.get("objects", []):
        if "nodes" in obj and obj.get("name", "").startswith("cluster"):
            bx0, by0, bx1, by1 = (float(v) for v in obj["bb"].split(","))
            clusters.append(
                LayoutCluster(
                    id=obj["name"],
                    label=cluster_path(obj["name"]),
                    title=_fold_frame_title(graph, cluster_path(obj["name"]), units.folds),
                    x=bx0 - x0,
                    y=height - (by1 - y0),
                    width=bx1 - bx0,
                    height=by1 - by0,
                )
            )
            continue
        if "pos" not in obj:
            continue
        box = by_name[obj["name"]]
        names[obj["_gvid"]] = box.id
        cx, cy = (float(v) for v in obj["pos"].split(","))
        nodes.append(
            LayoutNode(
                id=box.id,
                kind=box.kind,
                label=box.label,
                detail=box.detail,
                x=cx - x0 - box.width / 2,
                y=height - (cy - y0) - (box.height + box.below) / 2,
                width=box.width,
                height=box.height,
                members=box.members,
                module=box.module,
                parameters=box.parameters,
                shape=box.shape,
            )
        )
    member_edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for edge in graph.edges:
        key = (units.unit_of[edge.source], units.unit_of[edge.target])
        member_edges[key].append(edge.id)
        member_edges[(key[1], key[0])].append(edge.id)
    edges: list[LayoutEdge] = []
    for obj in placed.get("edges", []):
        if obj.get("style") == "invis":  # order_edges: they only stack iterations
            continue
        tail, head = names[obj["tail"]], names[obj["head"]]
        source, target = tail, head
        if obj.get("dir") == "back":  # drawn reversed: AccumulateGrad -> leaf
            source, target = head, tail
        edges.append(
            LayoutEdge(
                id=f"le{len(edges)}",
                source=source,
                target=target,
                path=_spline_path(obj.get("pos", ""), height + y0),
                members=sorted(set(member_edges.get((source, target), []))),
            )
        )
    edges.extend(_side_edges(graph, units, nodes, member_edges, len(edges)))
    if edges and nodes:  # an edge drawn beside the boxes widens the drawing
        width = max(width, _rightmost(edges, width))
    if not clusters:  # frames of expanded modules would be cut: those graphs keep one column
        wrapped = wrap_columns(nodes, edges, _extents(nodes, boxes), (width, height), aspect)
        if wrapped is not None:
            nodes, edges, width, height = (
                wrapped.nodes,
                wrapped.edges,
                wrapped.width,
                wrapped.height,
            )
    return Layout(
        width=width,
        height=height,
        expanded=sorted(units.expanded),
        collapsible=collapsible_groups(units.path_of, units.folds),
        nodes=nodes,
        edges=edges,
        clusters=clusters,
        node_of=dict(units.unit_of),
        messages=units.messages,
        folds={fold: list(members) for fold, members in units.folds.members.items()},
    )


def _folds_closed(units: _Units) -> set[str] | None:
    """The open groups of a view with every fold closed; None when no fold was open."""
    folds = units.folds
    if not any(fold in units.expanded for fold in folds.members):
        return None
    return {p for p in units.expanded if not any(g in folds.members for g in folds.lineage(p))}


SIDE_BULGE = 28.0  # px an edge drawn beside the boxes bulges out to their right


def _fold_frame_title(graph: Graph, path: str, folds: Folds) -> str | None:
    """The frame text of a fold ('layers × 48') or a loop's iteration ('line 9#2')."""
    if path in folds.members or path in folds.fold_of:
        return clip_label(group_title(graph, path, folds))
    return None


def _side_edges(
    graph: Graph,
    units: _Units,
    nodes: list[LayoutNode],
    member_edges: dict[tuple[str, str], list[str]],
    first: int,
) -> list[LayoutEdge]:
    """The edges dot was not given (detached_pairs): from the side of the source box toward
    the target, bulging out past both boxes, into the target box's same side."""
    placed = {node.id: node for node in nodes}
    pairs = {(units.unit_of[e.source], units.unit_of[e.target]) for e in graph.edges}
    pairs = {(a, b) for a, b in pairs if a != b and a in placed and b in placed}
    side: list[LayoutEdge] = []
    for source, target in sorted(detached_pairs(units, pairs)):
        a, b = placed[source], placed[target]
        sy, ty = a.y + a.height / 2, b.y + b.height / 2
        if a.x + a.width / 2 < b.x + b.width / 2:  # a source on the left runs down the left
            sx, tx = a.x, b.x
            bend = max(0.0, min(sx, tx) - SIDE_BULGE)
        else:
            sx, tx = a.x + a.width, b.x + b.width
            bend = max(sx, tx) + SIDE_BULGE
        side.append(
            LayoutEdge(
                id=f"le{first + len(side)}",
                source=source,
                target=target,
                path=f"M{sx:.1f},{sy:.1f} C{bend:.1f},{sy:.1f} {bend:.1f},{ty:.1f} "
                f"{tx:.1f},{ty:.1f}",
                members=sorted(set(member_edges.get((source, target), []))),
            )
        )
    return side


def _rightmost(edges: list[LayoutEdge], width: float) -> float:
    """The right end of the drawing with every edge's control points in it."""
    xs = [float(x) for edge in edges for x, _ in _POINT_XY.findall(edge.path)]
    return max([width, *xs])
