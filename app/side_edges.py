"""Edges drawn beside the boxes (a loop's shared weight into each later iteration), for the page's
layout and for graphviz's SVG, which is not given them."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

SIDE_BULGE = 28.0  # px an edge drawn beside the boxes bulges out to their right or left
ARROW_LENGTH, ARROW_HALF_WIDTH = 7.0, 2.5  # graphviz's normal arrow at arrowsize=0.7


@dataclass(frozen=True)
class Box:
    """A placed box: its top-left corner and size, y growing downward on the page and upward in
    graphviz's SVG (where y is negative); only the sides and the middle matter here."""

    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class SideCurve:
    """From the side of one box to the same side of another, bulging out past both."""

    sx: float
    sy: float
    bend: float
    tx: float
    ty: float

    @property
    def path(self) -> str:
        return (
            f"M{self.sx:.1f},{self.sy:.1f} C{self.bend:.1f},{self.sy:.1f} "
            f"{self.bend:.1f},{self.ty:.1f} {self.tx:.1f},{self.ty:.1f}"
        )


def side_curve(a: Box, b: Box, left_edge: float = 0.0) -> SideCurve:
    """The curve from box a to box b: down the left sides when a lies left of b, else the right."""
    sy, ty = a.y + a.height / 2, b.y + b.height / 2
    if a.x + a.width / 2 < b.x + b.width / 2:
        sx, tx = a.x, b.x
        bend = max(left_edge, min(sx, tx) - SIDE_BULGE)
    else:
        sx, tx = a.x + a.width, b.x + b.width
        bend = max(sx, tx) + SIDE_BULGE
    return SideCurve(sx, sy, bend, tx, ty)


_NODE = re.compile(
    r'<g id="node\d+" class="node[^"]*">\s*<title>([^<]*)</title>\s*'
    r'<(?:path|polygon|ellipse)\b[^>]*?(?:d|points)="([^"]*)"'
)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e-?\d+)?")
_VIEW_BOX = re.compile(r'viewBox="([-\d.]+) ([-\d.]+) ([-\d.]+) ([-\d.]+)"')
_TRANSLATE = re.compile(r'<g id="graph0" class="graph" transform="[^"]*translate\(([-\d.]+) ')
_FIRST_NODE = re.compile(r'<g id="node\d+" class="node')


def svg_boxes(svg: str) -> dict[str, Box]:
    """Each node of graphviz's SVG by its dot name: the bounds of its outline."""
    boxes: dict[str, Box] = {}
    for title, points in _NODE.findall(svg):
        numbers = [float(n) for n in _NUMBER.findall(points)]
        xs, ys = numbers[0::2], numbers[1::2]
        if xs and ys:
            left, top = min(xs), min(ys)
            boxes[html.unescape(title)] = Box(left, top, max(xs) - left, max(ys) - top)
    return boxes


def add_side_edges(svg: str, pairs: list[tuple[str, str]], colour: str) -> str:
    """graphviz's SVG with the edges between these dot names drawn beside the boxes, under
    them, as the page draws them; pairs naming a box the SVG lacks are left out."""
    if not pairs:
        return svg
    boxes = svg_boxes(svg)
    translate = _TRANSLATE.search(svg)
    left_edge = -float(translate.group(1)) + 2 if translate else 0.0
    drawn: list[str] = []
    for source, target in pairs:
        if source not in boxes or target not in boxes:
            continue
        curve = side_curve(boxes[source], boxes[target], left_edge)
        direction = 1.0 if curve.bend < curve.tx else -1.0  # the arrow points into the box
        base = curve.tx - direction * ARROW_LENGTH
        shaft = SideCurve(curve.sx, curve.sy, curve.bend, base, curve.ty)
        arrow = (
            f"{curve.tx:.1f},{curve.ty:.1f} {base:.1f},{curve.ty - ARROW_HALF_WIDTH:.1f} "
            f"{base:.1f},{curve.ty + ARROW_HALF_WIDTH:.1f} {curve.tx:.1f},{curve.ty:.1f}"
        )
        title = html.escape(f"{source}->{target}")
        drawn.append(
            f'<g class="edge side"><title>{title}</title>\n'
            f'<path fill="none" stroke="{colour}" stroke-width="1.3" d="{shaft.path}"/>\n'
            f'<polygon fill="{colour}" stroke="{colour}" stroke-width="1.3" points="{arrow}"/>\n'
            "</g>\n"
        )
    first = _FIRST_NODE.search(svg)
    at = first.start() if first else svg.rfind("</g>")
    return svg[:at] + "".join(drawn) + svg[at:] if at >= 0 else svg
