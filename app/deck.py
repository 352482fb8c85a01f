"""A lesson as a deck, one page per player step: PDF pages, PPTX slides, GIF or MP4 frames.

Every page is the still export of its step (app/export.py) under one layout per pass, so that
flipping pages animates, with the step's title above the graph and its caption under it."""

from __future__ import annotations

import html
import io
import os
import re
import tempfile
import textwrap
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

from app.badges import badge_track
from app.errors import LimitExceeded
from app.export import (
    LEGEND,
    THEMES,
    BadStep,
    Frame,
    graph_svg,
    step_view,
)
from app.layout import INSTALL_HINT, DotLimits, LayoutUnavailable, dot_available, text_width
from app.page_render import run_rsvg
from app.pass_view import pass_of_step, splits_by_pass
from app.schemas import Caption, Graph
from app.step_caption import step_caption

DeckFormat = Literal["pdf", "pptx", "gif", "mp4"]
DECK_FORMATS: dict[str, tuple[str, str]] = {  # format -> (content type, file extension)
    "pdf": ("application/pdf", "pdf"),
    "pptx": (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "pptx",
    ),
    "gif": ("image/gif", "gif"),
    "mp4": ("video/mp4", "mp4"),
}
ASPECTS: dict[str, tuple[int, int]] = {"16:9": (960, 540), "4:3": (720, 540)}  # points
MAX_PAGES = 120  # AE_MAX_DECK_PAGES on the server
MAX_WORKERS = 4  # pages drawn at once
T = TypeVar("T")
R = TypeVar("R")
STEPS_PATTERN = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d*)\s*)?$")
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


def deck_steps(graph: Graph) -> list[str]:
    """Every player step once, in play order: each pass's forward steps, then its backward
    steps; a program without backward() is its forward steps; calls after the last pass last."""
    last = len(graph.backward) - 1
    order: list[str] = []
    for pass_index in range(len(graph.backward)):
        order.extend(
            f"forward:{i}"
            for i, step in enumerate(graph.forward)
            if min(step.after_pass, last) == pass_index and step.after_pass <= pass_index
        )
        order.extend(
            f"backward:{pass_index}:{i}" for i in range(len(graph.backward[pass_index].steps))
        )
    placed = set(order)
    order.extend(f"forward:{i}" for i in range(len(graph.forward)) if f"forward:{i}" not in placed)
    return order


def select_steps(steps: list[str], spec: str | None, max_pages: int = MAX_PAGES) -> list[str]:
    """The steps a range keeps ('3-9', '5', '4-', counted from 1), within the page cap.

    BadStep for a malformed or empty range; LimitExceeded('deck_pages') past the cap."""
    chosen = steps
    if spec:
        match = STEPS_PATTERN.match(spec)
        if not match:
            raise BadStep(f"steps must look like 3-9, 5 or 4- (counted from 1), not {spec!r}")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else None
        if last is None:
            last = first if "-" not in spec else len(steps)
        if first < 1 or last < first or first > len(steps):
            raise BadStep(
                f"steps {spec!r} must run first-last within the recording's 1-{len(steps)}"
            )
        chosen = steps[first - 1 : min(last, len(steps))]
    if not chosen:
        raise BadStep("the recording has no step to draw")
    if len(chosen) > max_pages:
        raise LimitExceeded(
            "deck_pages",
            f"{len(chosen)} pages asked for; a deck holds at most {max_pages}: "
            "choose fewer with steps (e.g. 1-40)",
        )
    return chosen


def _svg_size(svg: bytes) -> tuple[float, float]:
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


def _wrap(lines: list[str], width_pt: float, size: float) -> list[str]:
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
    caption = _wrap(page.caption, geo.width - 2 * MARGIN, CAPTION_PT)
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


def draw_pages(
    graph: Graph,
    options: DeckOptions,
    narration: dict[str, Caption] | None = None,
    limits: DotLimits | None = None,
) -> list[Page]:
    """The graph at every chosen step, under one layout per pass (the rank direction that
    shows it largest), with each step's title and caption."""
    if not dot_available():
        raise LayoutUnavailable(INSTALL_HINT)
    page_size(options.aspect)
    if graph.badges is None:  # one badge track for every page
        graph = graph.model_copy(update={"badges": badge_track(graph)})
    chosen = select_steps(deck_steps(graph), options.steps, options.max_pages)
    expanded = list(options.expanded)
    captions = {step: step_caption(graph, step, options.lang, narration) for step in chosen}
    width = page_size(options.aspect)[0] - 2 * MARGIN
    lines = max(len(_wrap(c.lines(), width, CAPTION_PT)) for c in captions.values())
    area = geometry(options, lines).graph_box  # the same on every page
    direction: dict[int, str] = {}
    for step in chosen:  # the direction of each pass's layout, from its first page
        shown = pass_of_step(step, graph) if splits_by_pass(graph) else 0
        if shown not in direction:
            best = ("TB", -1.0)
            for rankdir in ("TB", "LR"):
                frame = Frame(rankdir=rankdir, title=False, legend=False)
                svg = graph_svg(graph, expanded, step, options.theme, options.lang, limits, frame)
                scale = graph_scale(_svg_size(svg), area)
                if scale > best[1] * 1.05:  # top to bottom unless sideways is clearly larger
                    best = (rankdir, scale)
            direction[shown] = best[0]

    def draw(step: str) -> Page:
        shown = pass_of_step(step, graph) if splits_by_pass(graph) else 0
        frame = Frame(rankdir=direction[shown], title=False, legend=False)
        svg = graph_svg(graph, expanded, step, options.theme, options.lang, limits, frame)
        caption = captions[step]
        return Page(
            step=step,
            title=step_view(graph, step, options.lang).title,
            caption=caption.lines(),
            narration=caption.narration,
            graph=svg,
            size=_svg_size(svg),
            caption_lines=lines,
            focus=current_box(svg),
        )

    return in_parallel(draw, chosen)


def in_parallel(work: Callable[[T], R], items: list[T]) -> list[R]:
    """work on every item, in order, a few at a time: each mostly waits on dot or librsvg
    (at most one dot per core runs in the whole process anyway)."""
    workers = min(MAX_WORKERS, len(os.sched_getaffinity(0)) or 1, len(items))
    if workers <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(workers, thread_name_prefix="deck") as pool:
        return list(pool.map(work, items))


def to_pdf(pages: list[Page], options: DeckOptions, limits: DotLimits | None = None) -> bytes:
    """A vector PDF, one page per step, fonts embedded."""
    svgs = [page_svg(p, i + 1, len(pages), options) for i, p in enumerate(pages)]
    return run_rsvg(svgs, "pdf", 1.0, limits)


def frames(pages: list[Page], options: DeckOptions, limits: DotLimits | None = None) -> list:
    """Every page as an RGB picture (1280×720 for 16:9)."""
    from PIL import Image

    def draw(number: int) -> Image.Image:
        svg = page_svg(pages[number], number + 1, len(pages), options)
        png = run_rsvg([svg], "png", FRAME_ZOOM, limits)
        return Image.open(io.BytesIO(png)).convert("RGB")

    return in_parallel(draw, list(range(len(pages))))


def to_gif(pages: list[Page], options: DeckOptions, limits: DotLimits | None = None) -> bytes:
    """An animated GIF that loops, options.seconds per step."""
    pictures = frames(pages, options, limits)
    out = io.BytesIO()
    pictures[0].save(
        out,
        format="GIF",
        save_all=True,
        append_images=pictures[1:],
        duration=int(round(options.seconds * 1000)),
        loop=0,
    )
    return out.getvalue()


def to_mp4(pages: list[Page], options: DeckOptions, limits: DotLimits | None = None) -> bytes:
    """An H.264 MP4, one video frame per step shown for options.seconds."""
    import imageio_ffmpeg

    pictures = frames(pages, options, limits)
    size = pictures[0].size
    with tempfile.TemporaryDirectory(prefix="ae-video-") as folder:
        path = Path(folder) / "deck.mp4"
        writer = imageio_ffmpeg.write_frames(
            str(path),
            size,
            fps=1.0 / options.seconds,
            codec="libx264",
            pix_fmt_in="rgb24",
            pix_fmt_out="yuv420p",
            macro_block_size=8,
            ffmpeg_log_level="error",
            output_params=["-movflags", "+faststart"],
        )
        writer.send(None)
        for picture in pictures:
            writer.send(picture.tobytes())
        writer.close()
        return path.read_bytes()


def to_pptx(pages: list[Page], options: DeckOptions, limits: DotLimits | None = None) -> bytes:
    """Slides with the graph as a picture that fills the slide's graph area, the caption as
    the slide's text and the narration (and rule) in the speaker notes."""
    from pptx import Presentation
    from pptx.dml.color import RGBColor
    from pptx.util import Pt

    from app.page_render import rasterize

    width, height = page_size(options.aspect)
    deck = Presentation()
    deck.slide_width, deck.slide_height = Pt(width), Pt(height)
    blank = deck.slide_layouts[6]
    colours = THEMES.get(options.theme, THEMES["light"])

    def rgb(hex_colour: str) -> RGBColor:
        return RGBColor.from_string(hex_colour.lstrip("#")[:6].upper())

    def draw(page: Page) -> bytes:
        view = page.view(geometry(options, page.caption_lines).graph_box)
        return rasterize(region_svg(page, view), limits, zoom=PICTURE_PX_PER_PT * 0.75)

    pictures = in_parallel(draw, pages)
    for number, page in enumerate(pages, start=1):
        slide = deck.slides.add_slide(blank)
        slide.background.fill.solid()
        slide.background.fill.fore_color.rgb = rgb(colours["bg"])
        caption = _wrap(page.caption, width - 2 * MARGIN, CAPTION_PT)
        geo = geometry(options, page.caption_lines)
        heading = slide.shapes.add_textbox(
            Pt(MARGIN), Pt(MARGIN / 2), Pt(width - 2 * MARGIN), Pt(28)
        )
        heading.name = "Title"
        run = heading.text_frame.paragraphs[0].add_run()
        run.text = f"{page.title}  ·  {number}/{len(pages)}"
        run.font.size, run.font.bold = Pt(HEADER_PT), True
        run.font.color.rgb = rgb(colours["fg"])
        x, y, w, h = geo.graph_box
        view = page.view(geo.graph_box)
        png = pictures[number - 1]
        shown_w, shown_h = view.width * view.scale, view.height * view.scale
        picture = slide.shapes.add_picture(
            io.BytesIO(png),
            Pt(x + (w - shown_w) / 2),
            Pt(y + (h - shown_h) / 2),
            Pt(shown_w),
            Pt(shown_h),
        )
        picture.name = "Graph"
        if caption:
            box = slide.shapes.add_textbox(
                Pt(MARGIN),
                Pt(geo.caption_top),
                Pt(width - 2 * MARGIN),
                Pt(geo.legend_top - geo.caption_top),
            )
            box.name = "Caption"
            frame = box.text_frame
            frame.word_wrap = True
            for i, line in enumerate(caption):
                paragraph = frame.paragraphs[0] if i == 0 else frame.add_paragraph()
                text_run = paragraph.add_run()
                text_run.text = line
                text_run.font.size = Pt(CAPTION_PT)
                text_run.font.color.rgb = rgb(colours["fg"])
        notes = [page.narration] if page.narration else []
        notes += [line for line in page.caption if line != page.narration]
        slide.notes_slide.notes_text_frame.text = "\n".join(notes) or page.title
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


WRITERS = {"pdf": to_pdf, "pptx": to_pptx, "gif": to_gif, "mp4": to_mp4}


def check_options(options: DeckOptions) -> None:
    """BadStep for options no deck can have (before any program runs)."""
    if options.format not in WRITERS:
        raise BadStep(f"format must be one of {', '.join(WRITERS)}, not {options.format!r}")
    page_size(options.aspect)
    if not 0.1 <= options.seconds <= 30:
        raise BadStep("seconds per step must be between 0.1 and 30")
    if options.steps and not STEPS_PATTERN.match(options.steps):
        raise BadStep(f"steps must look like 3-9, 5 or 4- (counted from 1), not {options.steps!r}")


def render_deck(
    graph: Graph,
    options: DeckOptions,
    narration: dict[str, Caption] | None = None,
    limits: DotLimits | None = None,
) -> bytes:
    """The deck's file; BadStep for bad options, LimitExceeded past the page cap."""
    check_options(options)
    pages = draw_pages(graph, options, narration, limits)
    return WRITERS[options.format](pages, options, limits)
