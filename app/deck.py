"""A lesson as a deck, one page per player step: PDF pages, PPTX slides, GIF or MP4 frames.

Every page is the still export of its step (app/export.py) under one layout per pass, so that
flipping pages animates, with the step's title above the graph and its caption under it."""

from __future__ import annotations

import io
import os
import re
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from app.badges import badge_track
from app.deck_page import (
    CAPTION_PT,
    FRAME_ZOOM,
    HEADER_PT,
    MARGIN,
    MAX_PAGES,
    PICTURE_PX_PER_PT,
    DeckOptions,
    Page,
    current_box,
    geometry,
    graph_scale,
    page_size,
    page_svg,
    region_svg,
    svg_size,
    wrap_caption,
)
from app.dot_run import INSTALL_HINT, DotLimits, LayoutUnavailable, dot_available
from app.errors import LimitExceeded
from app.export import THEMES, BadStep, Frame, graph_svg, picture_state
from app.page_render import run_rsvg
from app.pass_view import pass_of_step, splits_by_pass
from app.schemas import Caption, Graph
from app.step_caption import step_caption

__all__ = ["DECK_FORMATS", "PICTURE_PX_PER_PT", "DeckOptions", "Page", "geometry", "page_svg"]

DECK_FORMATS: dict[str, tuple[str, str]] = {  # format -> (content type, file extension)
    "pdf": ("application/pdf", "pdf"),
    "pptx": (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "pptx",
    ),
    "gif": ("image/gif", "gif"),
    "mp4": ("video/mp4", "mp4"),
}
STEPS_PATTERN = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d*)\s*)?$")
MAX_WORKERS = 4  # pages drawn at once
T = TypeVar("T")
R = TypeVar("R")


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
    lines = max(len(wrap_caption(c.lines(), width, CAPTION_PT)) for c in captions.values())
    area = geometry(options, lines).graph_box  # the same on every page
    direction: dict[int, str] = {}
    for step in chosen:  # the direction of each pass's layout, from its first page
        shown = pass_of_step(step, graph) if splits_by_pass(graph) else 0
        if shown not in direction:
            best = ("TB", -1.0)
            for rankdir in ("TB", "LR"):
                frame = Frame(rankdir=rankdir, title=False, legend=False)
                svg = graph_svg(graph, expanded, step, options.theme, options.lang, limits, frame)
                scale = graph_scale(svg_size(svg), area)
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
            title=picture_state(graph, step, options.lang).title,
            caption=caption.lines(),
            narration=caption.narration,
            graph=svg,
            size=svg_size(svg),
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
        caption = wrap_caption(page.caption, width - 2 * MARGIN, CAPTION_PT)
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
