"""Graph -> Layout: a view placed by dot, read back into boxes, edges and frames, wrapped to fit."""

from __future__ import annotations

import json
import re
from collections import defaultdict

from app.column_wrap import DEFAULT_ASPECT, Extent, wrap_columns
from app.dot_run import DotLimits, run_dot
from app.dot_source import cluster_path, to_dot
from app.errors import LimitExceeded
from app.layout_boxes import BadgeRoom, LayoutBox, clip_label, group_title
from app.layout_groups import ViewUnits, collapsible_groups, detached_edges
from app.layout_view import FOLDED_NOTES
from app.repeat_fold import Folds
from app.schemas import Graph, Layout, LayoutCluster, LayoutEdge, LayoutNode, NoteMessage
from app.side_edges import Box, side_curve

_POINT_XY = re.compile(r"(-?\d+(?:\.\d+)?),(-?\d+(?:\.\d+)?)")


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


def _extents(nodes: list[LayoutNode], boxes: dict[str, LayoutBox]) -> dict[str, Extent]:
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


def _folds_closed(units: ViewUnits) -> set[str] | None:
    """The open groups of a view with every fold closed; None when no fold was open."""
    folds = units.folds
    if not any(fold in units.expanded for fold in folds.members):
        return None
    return {p for p in units.expanded if not any(g in folds.members for g in folds.lineage(p))}


def _fold_frame_title(graph: Graph, path: str, folds: Folds) -> str | None:
    """The frame text of a fold ('layers × 48') or a loop's iteration ('line 9#2')."""
    if path in folds.members or path in folds.fold_of:
        return clip_label(group_title(graph, path, folds))
    return None


def _side_edges(
    graph: Graph,
    units: ViewUnits,
    nodes: list[LayoutNode],
    member_edges: dict[tuple[str, str], list[str]],
    first: int,
) -> list[LayoutEdge]:
    """The edges dot was not given (detached_pairs): from the side of the source box toward
    the target, bulging out past both boxes, into the target box's same side."""
    placed = {node.id: node for node in nodes}
    pairs = {(a, b) for a, b in detached_edges(graph, units) if a in placed and b in placed}
    side: list[LayoutEdge] = []
    for source, target in sorted(pairs):
        a, b = placed[source], placed[target]
        curve = side_curve(Box(a.x, a.y, a.width, a.height), Box(b.x, b.y, b.width, b.height))
        side.append(
            LayoutEdge(
                id=f"le{first + len(side)}",
                source=source,
                target=target,
                path=curve.path,
                members=sorted(set(member_edges.get((source, target), []))),
            )
        )
    return side


def _rightmost(edges: list[LayoutEdge], width: float) -> float:
    """The right end of the drawing with every edge's control points in it."""
    xs = [float(x) for edge in edges for x, _ in _POINT_XY.findall(edge.path)]
    return max([width, *xs])
