"""The boxes of a view: their text, their size and the badge room kept under them."""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass

from app.badges import badge_track, widest_badges
from app.layout_groups import ViewUnits
from app.repeat_fold import NO_FOLDS, Folds, fold_title, is_fold
from app.schemas import Graph, OpNode, TensorNode

DPI = 72.0  # dot works in points; at 72 dpi a point is a CSS pixel


FONT_PX = 16.0  # node titles; on a 960×540 slide no text may drop under 14 px


SMALL_FONT_PX = 14.0


BOX_HEIGHT = 46.0


BADGE_FONT_PX = 14.0  # the badges under boxes (graph-view.js draws them the same way)


BADGE_GAP_PX = 16.0


BADGE_LINE_PX = 18.0


LABEL_CHARS = 80  # longest text of a box or frame label that reaches dot, SVG or PNG


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
class LayoutBox:
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


def _reserve_badges(graph: Graph, boxes: dict[str, LayoutBox], room: BadgeRoom | None) -> None:
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


def _boxes(graph: Graph, units: ViewUnits, groups: dict[str, str | None]) -> dict[str, LayoutBox]:
    by_id = {n.id: n for n in graph.nodes}
    boxes: dict[str, LayoutBox] = {}
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
            boxes[unit] = LayoutBox(
                unit, kind, title, subtitle, width, height + 8, path, members, params, shape
            )
        else:
            node = by_id[unit]
            title, subtitle = (clip_label(text) for text in node_lines(node, by_id))
            width, height = box_size(title, subtitle, pill=isinstance(node, OpNode))
            boxes[unit] = LayoutBox(
                unit, node.kind, title, subtitle, width, height, groups.get(unit), []
            )
    return boxes


def sized_boxes(
    graph: Graph, units: ViewUnits, groups: dict[str, str | None], room: BadgeRoom | None
) -> dict[str, LayoutBox]:
    boxes = _boxes(graph, units, groups)
    _reserve_badges(graph, boxes, room)
    return boxes
