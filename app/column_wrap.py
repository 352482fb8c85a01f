"""Wrap a tall top-to-bottom layout into side-by-side columns, so a wide frame holds it large."""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.schemas import LayoutEdge, LayoutNode

DEFAULT_ASPECT = 2.0  # width / height of the graph's frame on a laptop page, a 16:9 slide or embed
MAX_COLUMNS = 5
COLUMN_GAP = 24.0  # px between columns
GAIN = 1.1  # wrap only when the graph then shows at least this much larger
MIN_LEVELS = 3  # ranks each column holds at least
_POINT = re.compile(r"(-?\d+(?:\.\d+)?),(-?\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class Extent:
    """What a box covers: itself, the badge reserved under it and its widest badge."""

    left: float
    top: float
    right: float
    bottom: float


@dataclass(frozen=True)
class Wrapped:
    """Nodes and edges moved into columns, and the new size."""

    nodes: list[LayoutNode]
    edges: list[LayoutEdge]
    width: float
    height: float


def fit_score(width: float, height: float, aspect: float) -> float:
    """How large a width×height drawing shows in a frame of this aspect (larger is better)."""
    return min(aspect / max(width, 1.0), 1.0 / max(height, 1.0))


def _crossings(
    tops: list[float], level: dict[str, float], links: list[tuple[str, str]]
) -> dict[float, int]:
    """For a cut above each rank: how many edges cross it (one pass over the edges)."""
    index = {top: i for i, top in enumerate(tops)}
    change = [0] * (len(tops) + 1)
    for a, b in links:  # an edge crosses every cut above a rank after its upper end, to its lower
        upper, lower = sorted((index[level[a]], index[level[b]]))
        change[upper + 1] += 1
        change[lower + 1] -= 1
    counts: dict[float, int] = {}
    running = 0
    for i, top in enumerate(tops):
        running += change[i]
        counts[top] = running
    return counts


def _bands(
    extents: dict[str, Extent], links: list[tuple[str, str]], columns: int
) -> list[list[str]]:
    """Boxes cut into `columns` runs of whole ranks of about equal height, top to bottom, each cut
    where the fewest edges cross it (a leaf stays with the op that reads it)."""
    level = {node_id: round(e.top, 1) for node_id, e in extents.items()}
    tops = sorted(set(level.values()))
    first, height = tops[0], max(e.bottom for e in extents.values()) - tops[0]
    slack = height / columns / 4
    crossing = _crossings(tops, level, links)
    cuts: list[float] = []
    for i in range(1, columns):
        wanted = first + height * i / columns
        near = [t for t in tops if t > (cuts[-1] if cuts else first) and abs(t - wanted) <= slack]
        if not near:
            near = [t for t in tops if t > (cuts[-1] if cuts else first)]
        if not near:
            break
        cuts.append(min(near, key=lambda t: (crossing[t], abs(t - wanted))))
    bands: list[list[str]] = [[] for _ in range(len(cuts) + 1)]
    for node_id in extents:
        bands[sum(1 for cut in cuts if level[node_id] >= cut)].append(node_id)
    return [band for band in bands if band]


def _placement(
    extents: dict[str, Extent], bands: list[list[str]]
) -> tuple[dict[str, tuple[float, float]], float, float]:
    """Per node the (dx, dy) that moves its band into its column, and the wrapped size."""
    shift: dict[str, tuple[float, float]] = {}
    left = 0.0
    height = 0.0
    for band in bands:
        x0 = min(extents[n].left for n in band)
        x1 = max(extents[n].right for n in band)
        y0 = min(extents[n].top for n in band)
        y1 = max(extents[n].bottom for n in band)
        for node_id in band:
            shift[node_id] = (left - x0, -y0)
        left += (x1 - x0) + COLUMN_GAP
        height = max(height, y1 - y0)
    return shift, left - COLUMN_GAP, height


def _moved_path(path: str, dx: float, dy: float) -> str:
    return _POINT.sub(lambda m: f"{float(m[1]) + dx:.1f},{float(m[2]) + dy:.1f}", path)


def _jump(source: LayoutNode, target: LayoutNode) -> str:
    """An edge from a box in one column to a box in the next: out of the source's right side,
    over the gap, into the target's left side."""
    sx, sy = source.x + source.width, source.y + source.height / 2
    tx, ty = target.x, target.y + target.height / 2
    bend = max(24.0, (tx - sx) / 2)
    curve = f"C{sx + bend:.1f},{sy:.1f} {tx - bend:.1f},{ty:.1f} {tx:.1f},{ty:.1f}"
    return f"M{sx:.1f},{sy:.1f} {curve}"


def wrap_columns(
    nodes: list[LayoutNode],
    edges: list[LayoutEdge],
    extents: dict[str, Extent],
    size: tuple[float, float],
    aspect: float = DEFAULT_ASPECT,
) -> Wrapped | None:
    """The layout cut into columns where that shows it larger in the frame, else None."""
    if len(nodes) < 4 or not extents:
        return None
    links = [(e.source, e.target) for e in edges if e.source in extents and e.target in extents]
    width, height = size
    best: tuple[float, list[list[str]]] | None = None
    baseline = fit_score(width, height, aspect)
    levels = len({round(e.top, 1) for e in extents.values()})
    for columns in range(2, MAX_COLUMNS + 1):
        if levels < MIN_LEVELS * columns:  # a column of one or two ranks reads as a scatter
            break
        bands = _bands(extents, links, columns)
        if len(bands) < columns:
            break
        _, wrapped_width, wrapped_height = _placement(extents, bands)
        score = fit_score(wrapped_width, wrapped_height, aspect)
        if score > baseline * GAIN and (best is None or score > best[0]):
            best = (score, bands)
    if best is None:
        return None
    shift, wrapped_width, wrapped_height = _placement(extents, best[1])
    moved = [
        node.model_copy(update={"x": node.x + shift[node.id][0], "y": node.y + shift[node.id][1]})
        for node in nodes
    ]
    by_id = {node.id: node for node in moved}
    band_of = {node_id: i for i, band in enumerate(best[1]) for node_id in band}
    new_edges: list[LayoutEdge] = []
    for edge in edges:
        if band_of[edge.source] == band_of[edge.target]:
            dx, dy = shift[edge.source]
            new_edges.append(edge.model_copy(update={"path": _moved_path(edge.path, dx, dy)}))
            continue
        upper, lower = sorted((edge.source, edge.target), key=lambda n: band_of[n])
        path = _jump(by_id[upper], by_id[lower])
        if upper != edge.source:  # drawn from the later column's box back: reverse
            path = _reverse(path)
        new_edges.append(edge.model_copy(update={"path": path}))
    return Wrapped(moved, new_edges, wrapped_width, wrapped_height)


def _reverse(path: str) -> str:
    """A one-segment cubic path drawn the other way."""
    points = _POINT.findall(path)
    a, b, c, d = points
    return f"M{d[0]},{d[1]} C{c[0]},{c[1]} {b[0]},{b[1]} {a[0]},{a[1]}"
