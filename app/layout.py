"""Graph -> Layout: group by module (collapsed unless expanded), place the visible part with dot."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import unicodedata
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from app.badges import badge_track, widest_badges
from app.errors import LimitExceeded
from app.schemas import Graph, Layout, LayoutCluster, LayoutEdge, LayoutNode, OpNode, TensorNode

DPI = 72.0  # dot works in points; at 72 dpi a point is a CSS pixel
FONT_PX = 16.0  # node titles; on a 960×540 slide no text may drop under 14 px
SMALL_FONT_PX = 14.0
BOX_HEIGHT = 52.0
BADGE_FONT_PX = 14.0  # the badges under boxes (graph-view.js draws them the same way)
BADGE_GAP_PX = 16.0
BADGE_LINE_PX = 18.0
LINE_GROUP_THRESHOLD = 300  # module-less graphs larger than this are grouped by source line
MAX_VISIBLE = 2500
DOT_TIMEOUT_S = 60.0
INSTALL_HINT = (
    "graphviz's 'dot' was not found: install graphviz (Debian/Ubuntu: apt-get install graphviz; "
    "macOS: brew install graphviz) to see graph layouts"
)


class LayoutUnavailable(Exception):
    """graphviz's dot is not installed."""


def dot_available() -> bool:
    """Whether graphviz's dot is on PATH."""
    return shutil.which("dot") is not None


def text_width(text: str, font_px: float) -> float:
    """Approximate rendered width of text in px (wide characters count double)."""
    units = sum(1.0 if unicodedata.east_asian_width(ch) in "WF" else 0.6 for ch in text)
    return units * font_px


def shape_text(shape: list[int]) -> str:
    """'2×3' for [2, 3], 'scalar' for []."""
    return "×".join(str(s) for s in shape) if shape else "scalar"


def node_lines(node: TensorNode | OpNode, by_id: dict[str, TensorNode | OpNode]) -> tuple[str, str]:
    """The two text lines a node shows: name and shape, or op and grad_fn."""
    if isinstance(node, TensorNode):
        return node.label, f"{shape_text(node.shape)} {node.dtype}"
    if node.variable is not None:  # the leaf's current name, not the one it had at creation
        return "AccumulateGrad", f"→ {by_id[node.variable].label}.grad"
    return node.label, node.grad_fn or ""


def box_size(title: str, subtitle: str, pill: bool = False) -> tuple[float, float]:
    """Width and height in px of a box holding a title and a smaller subtitle."""
    width = max(text_width(title, FONT_PX), text_width(subtitle, SMALL_FONT_PX)) + 24
    if pill:  # rounded ends take half the height on each side
        width += BOX_HEIGHT / 2
    return max(64.0, width), BOX_HEIGHT


@dataclass
class _Units:
    """Which layout node shows each graph node, for one expanded set."""

    unit_of: dict[str, str] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    groups: set[str] = field(default_factory=set)


def node_groups(graph: Graph) -> dict[str, str | None]:
    """The module path (or 'line:N' group) each node belongs to, None for the top level."""
    by_id = {n.id: n for n in graph.nodes}
    producers: dict[str, str] = {}
    consumers: dict[str, list[str]] = defaultdict(list)
    for edge in graph.edges:
        source, target = by_id[edge.source], by_id[edge.target]
        if isinstance(source, OpNode) and isinstance(target, TensorNode):
            producers.setdefault(target.id, source.id)
        elif isinstance(source, TensorNode) and isinstance(target, OpNode):
            consumers[source.id].append(target.id)
    ops = [n for n in graph.nodes if isinstance(n, OpNode)]
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


def collapsible_groups(groups: dict[str, str | None]) -> list[str]:
    """Every module path prefix and line group that can be expanded."""
    found: set[str] = set()
    for path in groups.values():
        if not path:
            continue
        if path.startswith("line:"):
            found.add(path)
            continue
        parts = path.split(".")
        found.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return sorted(found, key=lambda p: (p.count("."), p))


def _visible_group(path: str | None, expanded: set[str]) -> str | None:
    """The collapsed group that hides a node at path, or None when the node is visible."""
    if not path:
        return None
    if path.startswith("line:"):
        return None if path in expanded else path
    parts = path.split(".")
    for i in range(1, len(parts) + 1):
        prefix = ".".join(parts[:i])
        if prefix not in expanded:
            return prefix
    return None


def _units(graph: Graph, groups: dict[str, str | None], expanded: set[str]) -> _Units:
    units = _Units()
    for node in graph.nodes:
        hidden_in = _visible_group(groups.get(node.id), expanded)
        unit = node.id if hidden_in is None else f"group:{hidden_in}"
        if hidden_in is not None:
            units.groups.add(unit)
        units.unit_of[node.id] = unit
        units.members[unit].append(node.id)
    return units


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
    below: float = 0.0  # room kept under the box for its value and gradient badges
    span: float = 0.0  # width the widest badge needs


def _reserve_badges(graph: Graph, boxes: dict[str, _Box]) -> None:
    """Keep room under each box for the widest badge any step shows, so none covers a node."""
    for node, (chars, lines) in widest_badges(graph.badges or badge_track(graph)).items():
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
            title = f"line {path[5:]}" if path.startswith("line:") else path
            if path in graph.modules:
                title = f"{path} · {graph.modules[path]}"
            width, height = box_size(f"▸ {title}", subtitle)  # drawn with a ▸ before it
            kind = "line" if path.startswith("line:") else "module"
            boxes[unit] = _Box(
                unit, kind, title, subtitle, width, height + 8, path, members, params, shape
            )
        else:
            node = by_id[unit]
            title, subtitle = node_lines(node, by_id)
            width, height = box_size(title, subtitle, pill=isinstance(node, OpNode))
            boxes[unit] = _Box(
                unit, node.kind, title, subtitle, width, height, groups.get(unit), []
            )
    return boxes


def _cluster_tree(boxes: dict[str, _Box], expanded: set[str]) -> dict[str | None, list[str]]:
    """Expanded module path -> the boxes drawn directly inside its frame (None: top level)."""
    tree: dict[str | None, list[str]] = defaultdict(list)
    for box in boxes.values():
        path = box.module
        if box.kind in ("module", "line"):
            path = box.module.rsplit(".", 1)[0] if box.module and "." in box.module else None
            if box.module and box.module.startswith("line:"):
                path = None
        while path and path not in expanded:
            path = path.rsplit(".", 1)[0] if "." in path else None
        tree[path].append(box.id)
    for path in list(tree):  # frames that hold only expanded sub-modules still need drawing
        parent = _parent(path, expanded) if path else None
        while parent is not None and parent not in tree:
            tree[parent] = []
            parent = _parent(parent, expanded)
    return tree


@dataclass(frozen=True)
class DotStyle:
    """How to_dot dresses the graph: the layout's bare sized boxes, or an export's look."""

    header: tuple[str, ...] = (
        "graph [rankdir=TB, nodesep=0.25, ranksep=0.32, splines=spline, fontsize=14];",
        'node [shape=box, fixedsize=true, label=""];',
    )
    node_attributes: Callable[[_Box], str] | None = None
    edge_attributes: Callable[[str, str], str] | None = None
    cluster_attributes: str = "margin=12;"
    footer: tuple[str, ...] = ()


def _size_attributes(box: _Box) -> str:
    width, height = max(box.width, box.span), box.height + box.below
    return f"width={width / DPI:.3f}, height={height / DPI:.3f}"


def visible_boxes(graph: Graph, expanded: set[str]) -> tuple[dict[str, _Box], _Units]:
    """The boxes shown with the given modules expanded, and which box shows each node."""
    groups = node_groups(graph)
    units = _units(graph, groups, expanded)
    boxes = _boxes(graph, units, groups)
    _reserve_badges(graph, boxes)
    if len(boxes) > MAX_VISIBLE:
        raise LimitExceeded(
            "layout_nodes",
            f"{len(boxes)} boxes would be visible; the limit is {MAX_VISIBLE}: collapse modules",
        )
    return boxes, units


def to_dot(
    graph: Graph, expanded: set[str], style: DotStyle | None = None
) -> tuple[str, dict[str, _Box], _Units]:
    """The DOT source of the visible part of the graph, with the boxes it places."""
    style = style or DotStyle()
    boxes, units = visible_boxes(graph, expanded)
    node_attributes = style.node_attributes or _size_attributes
    lines = ["digraph G {", *(f"  {line}" for line in style.header)]
    tree = _cluster_tree(boxes, expanded)

    def emit(path: str | None, indent: str) -> None:
        for box_id in tree.get(path, []):
            lines.append(f"{indent}{_quote(box_id)} [{node_attributes(boxes[box_id])}];")
        children = sorted(p for p in tree if p is not None and _parent(p, expanded) == path)
        for child in children:
            lines.append(f"{indent}subgraph {cluster_name(child)} {{")
            lines.append(f"{indent}  label={_quote(child)}; {style.cluster_attributes}")
            emit(child, indent + "  ")
            lines.append(f"{indent}}}")

    emit(None, "  ")
    by_id = {n.id: n for n in graph.nodes}
    for node in graph.nodes:  # an AccumulateGrad sits beside its leaf
        if isinstance(node, OpNode) and node.variable:
            a, b = units.unit_of[node.id], units.unit_of[node.variable]
            if a != b and a == node.id and b == node.variable:
                lines.append(f"  {{rank=same; {_quote(b)}; {_quote(a)}}}")
    seen: set[tuple[str, str]] = set()
    for edge in graph.edges:
        source, target = units.unit_of[edge.source], units.unit_of[edge.target]
        if source == target or (source, target) in seen:
            continue
        seen.add((source, target))
        extra = style.edge_attributes(source, target) if style.edge_attributes else ""
        node = by_id[edge.source]
        if isinstance(node, OpNode) and node.variable == edge.target:
            attrs = ", ".join(a for a in ("dir=back, constraint=false", extra) if a)
            lines.append(f"  {_quote(target)} -> {_quote(source)} [{attrs}];")
        else:
            lines.append(
                f"  {_quote(source)} -> {_quote(target)}" + (f" [{extra}];" if extra else ";")
            )
    lines.extend(f"  {line}" for line in style.footer)
    lines.append("}")
    return "\n".join(lines), boxes, units


def cluster_name(path: str) -> str:
    """A DOT-safe cluster id that still tells its module path."""
    return f"cluster_{path.encode('utf-8').hex()}"


def cluster_path(name: str) -> str:
    """The module path of a cluster id made by cluster_name."""
    return bytes.fromhex(name.removeprefix("cluster_")).decode("utf-8")


def _parent(path: str, expanded: set[str]) -> str | None:
    parent = path.rsplit(".", 1)[0] if "." in path else None
    while parent and parent not in expanded:
        parent = parent.rsplit(".", 1)[0] if "." in parent else None
    return parent


def run_dot(source: str, fmt: str = "json0", timeout: float = DOT_TIMEOUT_S) -> bytes:
    """Output of graphviz dot for a DOT source."""
    if not dot_available():
        raise LayoutUnavailable(INSTALL_HINT)
    try:
        done = subprocess.run(
            ["dot", f"-T{fmt}"],
            input=source.encode(),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise LimitExceeded("layout_time", f"graphviz took longer than {timeout:g} s") from None
    if done.returncode != 0:
        raise RuntimeError(f"dot failed: {done.stderr.decode(errors='replace')[:500]}")
    return done.stdout


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


def layout_graph(graph: Graph, expanded: list[str] | set[str] | None = None) -> Layout:
    """Positions for the graph with the given modules expanded (all others collapsed)."""
    expanded_set = set(expanded or ())
    source, boxes, units = to_dot(graph, expanded_set)
    placed = json.loads(run_dot(source))
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
                    x=bx0 - x0,
                    y=height - (by1 - y0),
                    width=bx1 - bx0,
                    height=by1 - by0,
                )
            )
            continue
        if "pos" not in obj:
            continue
        names[obj["_gvid"]] = obj["name"]
        box = boxes[obj["name"]]
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
    for i, obj in enumerate(placed.get("edges", [])):
        tail, head = names[obj["tail"]], names[obj["head"]]
        source, target = tail, head
        if obj.get("dir") == "back":  # drawn reversed: AccumulateGrad -> leaf
            source, target = head, tail
        edges.append(
            LayoutEdge(
                id=f"le{i}",
                source=source,
                target=target,
                path=_spline_path(obj.get("pos", ""), height + y0),
                members=sorted(set(member_edges.get((source, target), []))),
            )
        )
    groups = node_groups(graph)
    return Layout(
        width=width,
        height=height,
        expanded=sorted(expanded_set),
        collapsible=collapsible_groups(groups),
        nodes=nodes,
        edges=edges,
        clusters=clusters,
        node_of=dict(units.unit_of),
    )
