"""The page of a deck: where the header, the graph, the caption and the legend go, which part
of the graph a page shows, and the page itself as SVG."""

from __future__ import annotations

import html
import re
import textwrap
from dataclasses import dataclass
from typing import Literal

from app.export import LEGEND, THEMES, BadStep
from app.layout_boxes import text_width

DeckFormat = Literal["pdf", "pptx", "gif", "mp4"]
ASPECTS: dict[str, tuple[int, int]] = {"16:9": (960, 540), "4:3": (720, 540)}  # points
MAX_PAGES = 120  # AE_MAX_DECK_PAGES on the server
MARGIN = 24.0
HEADER_PT = 16.0
CAPTION_PT = 18.0
LEGEND_PT = 14.0
MAX_CAPTION_LINES = 6
FRAME_ZOOM = 1.0  # rsvg-convert draws a 960 pt page as 1280 px (96 dpi)
MAX_SCALE = 2.0  # a small graph grows to fill the page up to twice its size
PICTURE_PX_PER_PT = 3  # a slide's picture has 3 pixels per point of the graph (216 dpi)


@dataclass(frozen=True)
class DeckOptions:
    """How a deck is made: format, pages, look, and the speed of an animation."""

    format: DeckFormat = "pdf"
    steps: str | None = None  # pages to keep, counted from 1: "3-9", "5", "4-"
    theme: str = "light"
    lang: str = "en"
    expanded: tuple[str, ...] = ()
    aspect: str = "16:9"
    seconds: float = 1.5  # each step's time in a GIF or MP4
    title: str = ""  # the lesson's name, in every page's header
    max_pages: int = MAX_PAGES


@dataclass
class Page:
    """One step of the deck, drawn."""

    step: str
    title: str
    caption: list[str]
    narration: str
    graph: bytes  # the graph's SVG at this step
    size: tuple[float, float]  # the graph's width and height in points
    caption_lines: int = 0  # lines the deck keeps for a caption (the same on every page)
    focus: tuple[float, float, float, float] | None = None  # the current step's boxes

    def view(self, box: tuple[float, float, float, float]) -> Viewport:
        """The part of the graph this page shows in a graph box."""
        return viewport(self.size, box, self.focus)


def svg_size(svg: bytes) -> tuple[float, float]:
    """Width and height in points of graphviz's SVG."""
    head = svg[:2000].decode("utf-8", "replace")
    match = re.search(r'width="([\d.]+)pt" height="([\d.]+)pt"', head)
    if not match:
        raise ValueError("graphviz's SVG has no size")
    return float(match.group(1)), float(match.group(2))


def page_size(aspect: str) -> tuple[int, int]:
    """The page in points for an aspect ratio."""
    if aspect not in ASPECTS:
        raise BadStep(f"aspect must be one of {', '.join(ASPECTS)}, not {aspect!r}")
    return ASPECTS[aspect]


def wrap_caption(lines: list[str], width_pt: float, size: float) -> list[str]:
    """Caption lines wrapped to the page, at most MAX_CAPTION_LINES (the last one cut)."""
    out: list[str] = []
    for line in lines:
        chars = max(20, int(width_pt / (size * 0.58)))
        if any(text_width(ch, 1) >= 1 for ch in line[:40]):  # Chinese: one em a character
            chars = max(10, int(width_pt / size))
        out.extend(textwrap.wrap(line, chars) or [""])
    if len(out) > MAX_CAPTION_LINES:
        out = [*out[: MAX_CAPTION_LINES - 1], out[MAX_CAPTION_LINES - 1][:-1] + "…"]
    return out


def _legend_rows(theme: str, lang: str, width_pt: float) -> list[list[tuple[str, str]]]:
    """The legend's entries in rows that fit the page's width."""
    rows: list[list[tuple[str, str]]] = [[]]
    used = 0.0
    for kind, text in LEGEND.get(lang, LEGEND["en"]):
        need = 34 + text_width(text, LEGEND_PT) * 1.06 + 18
        if rows[-1] and used + need > width_pt:
            rows.append([])
            used = 0.0
        rows[-1].append((kind, text))
        used += need
    return rows


@dataclass(frozen=True)
class PageGeometry:
    """Where a page puts its parts, in points."""

    width: float
    height: float
    graph_box: tuple[float, float, float, float]  # x, y, width, height of the graph's area
    caption_top: float
    legend_top: float


def geometry(options: DeckOptions, caption_lines: int) -> PageGeometry:
    """The page's layout: header, graph, caption of caption_lines lines, legend."""
    width, height = page_size(options.aspect)
    legend_rows = len(_legend_rows(options.theme, options.lang, width - 2 * MARGIN))
    legend_height = legend_rows * (LEGEND_PT + 10)
    caption_height = caption_lines * CAPTION_PT * 1.3 + (8 if caption_lines else 0)
    top = MARGIN + HEADER_PT * 1.6
    legend_top = height - MARGIN / 2 - legend_height
    caption_top = legend_top - caption_height - 4
    box = (MARGIN, top, width - 2 * MARGIN, max(40.0, caption_top - top - 6))
    return PageGeometry(width, height, box, caption_top, legend_top)


def graph_scale(size: tuple[float, float], box: tuple[float, float, float, float]) -> float:
    """The scale at which a graph of size fills its box (text keeps its size only at 1)."""
    return min(box[2] / size[0], box[3] / size[1])


_CURRENT = re.compile(r'<g id="[^"]*" class="node[^"]*\bcurrent\b[^"]*">(.*?)</g>', re.S)
_SHAPE = re.compile(r"<(?:path|polygon|rect)\b[^>]*>")
_TRANSLATE = re.compile(r'id="graph0"[^>]*translate\(([-\d.]+)[ ,]([-\d.]+)\)')
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def current_box(svg: bytes) -> tuple[float, float, float, float] | None:
    """The box around the boxes of the current step, in the SVG's points, if any is drawn."""
    text = svg.decode("utf-8", "replace")
    shift = _TRANSLATE.search(text)
    tx, ty = (float(shift.group(1)), float(shift.group(2))) if shift else (0.0, 0.0)
    xs: list[float] = []
    ys: list[float] = []
    for group in _CURRENT.finditer(text):
        shape = _SHAPE.search(group.group(1))
        if shape is None:
            continue
        tag = shape.group(0)
        if tag.startswith("<rect"):
            values = {k: float(v) for k, v in re.findall(r'\b(x|y|width|height)="([-\d.]+)"', tag)}
            xs += [values["x"], values["x"] + values["width"]]
            ys += [values["y"], values["y"] + values["height"]]
            continue
        data = re.search(r'(?:points|d)="([^"]*)"', tag)
        numbers = [float(v) for v in _NUMBER.findall(data.group(1))] if data else []
        xs += numbers[0::2]
        ys += numbers[1::2]
    if not xs or not ys:
        return None
    return min(xs) + tx, min(ys) + ty, max(xs) + tx, max(ys) + ty


@dataclass(frozen=True)
class Viewport:
    """Which part of the graph a page shows (in the graph's points) and at what scale."""

    x: float
    y: float
    width: float
    height: float
    scale: float


def viewport(
    size: tuple[float, float],
    box: tuple[float, float, float, float],
    focus: tuple[float, float, float, float] | None,
) -> Viewport:
    """The whole graph scaled to fill the box when its text stays at least at its size (scale
    at least 1, at most MAX_SCALE); otherwise the graph at its size, the box following the
    current step (as /embed follows it), so that no text shrinks below 14 pt."""
    fit = graph_scale(size, box)
    if fit >= 1:
        scale = min(fit, MAX_SCALE)
        return Viewport(0.0, 0.0, size[0], size[1], scale)
    width, height = min(box[2], size[0]), min(box[3], size[1])
    cx, cy = size[0] / 2, size[1] / 2
    if focus is not None:
        cx, cy = (focus[0] + focus[2]) / 2, (focus[1] + focus[3]) / 2
    x = min(max(0.0, cx - width / 2), size[0] - width)
    y = min(max(0.0, cy - height / 2), size[1] - height)
    return Viewport(x, y, width, height, 1.0)


def _text(x: float, y: float, text: str, size: float, colour: str, **extra: str) -> str:
    attrs = " ".join(f'{k.replace("_", "-")}="{v}"' for k, v in extra.items())
    return (
        f'<text xml:space="preserve" x="{x:.1f}" y="{y:.1f}" '
        'font-family="DejaVu Sans, WenQuanYi Micro Hei" '
        f'font-size="{size:g}" fill="{colour}" {attrs}>{html.escape(text)}</text>'
    )


def region_svg(page: Page, view: Viewport) -> bytes:
    """The part of the graph a page shows, as an SVG of that size in points."""
    body = page.graph.decode("utf-8", "replace")
    inner = re.sub(r"^<svg[^>]*>", "", body[body.index("<svg") :]).rsplit("</svg>", 1)[0]
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{view.width:.2f}pt" '
        f'height="{view.height:.2f}pt" viewBox="{view.x:.2f} {view.y:.2f} {view.width:.2f} '
        f'{view.height:.2f}">{inner}</svg>'
    ).encode()


def page_svg(page: Page, number: int, count: int, options: DeckOptions) -> bytes:
    """One page: the header, the graph scaled into its box, the caption and the legend."""
    colours = THEMES.get(options.theme, THEMES["light"])
    geo = geometry(options, page.caption_lines)
    caption = wrap_caption(page.caption, geo.width - 2 * MARGIN, CAPTION_PT)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{geo.width}pt" height="{geo.height}pt" '
        f'viewBox="0 0 {geo.width} {geo.height}">',
        f'<rect width="{geo.width}" height="{geo.height}" fill="{colours["bg"]}"/>',
    ]
    baseline = MARGIN + HEADER_PT
    if options.title:
        parts.append(_text(MARGIN, baseline, options.title, HEADER_PT, colours["muted"]))
    parts.append(
        _text(
            geo.width - MARGIN,
            baseline,
            f"{page.title}  ·  {number}/{count}",
            HEADER_PT,
            colours["fg"],
            text_anchor="end",
            font_weight="bold",
        )
    )
    x, y, w, h = geo.graph_box
    body = page.graph.decode("utf-8", "replace")
    inner = re.sub(r"^<svg[^>]*>", "", body[body.index("<svg") :]).rsplit("</svg>", 1)[0]
    view = page.view(geo.graph_box)
    shown_w, shown_h = view.width * view.scale, view.height * view.scale
    parts.append(  # the nested svg clips the graph to the part shown
        f'<svg x="{x + (w - shown_w) / 2:.2f}" y="{y + (h - shown_h) / 2:.2f}" '
        f'width="{shown_w:.2f}" height="{shown_h:.2f}" '
        f'viewBox="{view.x:.2f} {view.y:.2f} {view.width:.2f} {view.height:.2f}" '
        f'preserveAspectRatio="none">{inner}</svg>'
    )
    for i, line in enumerate(caption):
        parts.append(
            _text(
                MARGIN,
                geo.caption_top + CAPTION_PT * (1.3 * i + 1),
                line,
                CAPTION_PT,
                colours["fg"],
            )
        )
    legend_y = geo.legend_top
    for row in _legend_rows(options.theme, options.lang, geo.width - 2 * MARGIN):
        lx = MARGIN
        for kind, text in row:
            fill, line = colours[kind] if kind != "grad" else (colours["grad"], colours["grad"])
            dash = ' stroke-dasharray="4 3"' if kind == "const" else ""
            radius = 8 if kind == "op" else 3
            parts.append(
                f'<rect x="{lx:.1f}" y="{legend_y:.1f}" width="28" height="16" rx="{radius}" '
                f'fill="{fill}" stroke="{line}" stroke-width="2"{dash}/>'
            )
            parts.append(_text(lx + 34, legend_y + 13, text, LEGEND_PT, colours["fg"]))
            lx += 34 + text_width(text, LEGEND_PT) * 1.06 + 18
        legend_y += LEGEND_PT + 10
    parts.append("</svg>")
    return "\n".join(parts).encode("utf-8")
