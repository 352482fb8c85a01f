"""The pictures of docs/slides.md, made from real decks and a real browser, each after checking
what the guide says of it.

They are written to tests/artifacts/slides/; with AE_UPDATE_GUIDE_IMAGES=1 they replace the
ones in docs/images/."""

from __future__ import annotations

import io
import os
import re
import shutil
import struct
from pathlib import Path

import pytest

from app.deck import DeckOptions, draw_pages, page_svg, to_pdf, to_pptx
from app.lessons import get_lesson
from app.page_render import rasterize
from app.step_caption import narration_for
from app.tracing import trace_code
from tests.browser_support import CHROMIUM

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "slides.md"
IMAGES = (
    ROOT / "docs" / "images"
    if os.environ.get("AE_UPDATE_GUIDE_IMAGES") == "1"
    else ROOT / "tests" / "artifacts" / "slides"
)
pytestmark = pytest.mark.skipif(
    shutil.which("dot") is None or shutil.which("rsvg-convert") is None,
    reason="needs graphviz and librsvg's rsvg-convert",
)


def keep(name: str, png: bytes) -> tuple[int, int]:
    """Write NAME.png for the guide, which must show it; its size in pixels."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert GUIDE.read_text(encoding="utf-8").count(f"images/{name}.png")
    IMAGES.mkdir(parents=True, exist_ok=True)
    (IMAGES / f"{name}.png").write_bytes(png)
    return struct.unpack(">II", png[16:24])


def test_deck_pictures_for_powerpoint_and_beamer() -> None:
    from pptx import Presentation
    from pypdf import PdfReader

    code = get_lesson("shared_weight").code
    graph = trace_code(code)
    options = DeckOptions(format="pptx", title="shared_weight")
    pages = draw_pages(graph, options, narration_for(code))
    slides = Presentation(io.BytesIO(to_pptx(pages, options)))
    # slide 5 is backward pass 1, step 2: the guide shows it and quotes its notes
    slide = slides.slides[4]
    assert pages[4].step == "backward:0:1"
    notes = slide.notes_slide.notes_text_frame.text
    assert notes.startswith(narration_for(code)["backward:0:1"].en)
    assert "b = w + 1" in GUIDE.read_text(encoding="utf-8")
    picture = page_svg(pages[4], 5, len(pages), options)  # what the slide holds, drawn
    assert keep("slides-pptx", rasterize(picture, zoom=1.0)) == (1280, 720)
    pdf_options = DeckOptions(format="pdf", title="shared_weight", aspect="4:3")
    pdf_pages = draw_pages(graph, pdf_options, narration_for(code))
    reader = PdfReader(io.BytesIO(to_pdf(pdf_pages, pdf_options)))
    assert len(reader.pages) == 8
    assert "backward pass 1 · step 4/5" in reader.pages[6].extract_text()
    page = page_svg(pdf_pages[6], 7, len(pdf_pages), pdf_options)  # \includegraphics[page=7]
    assert keep("slides-beamer", rasterize(page, zoom=1.0)) == (960, 720)


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_revealjs_slide_with_the_embed(browser, server, tmp_path: Path) -> None:
    expect = pytest.importorskip("playwright.sync_api").expect
    guide = GUIDE.read_text(encoding="utf-8")
    link = "/embed#example=shared_weight&step=backward:0:2"
    assert link in guide
    deck = tmp_path / "lecture.html"
    deck.write_text(
        "<!doctype html><html><body style='margin:0;background:#222;font:28px sans-serif'>"
        "<section style='width:1280px;height:720px;display:flex;flex-direction:column;"
        "align-items:center;justify-content:center;color:#eee'>"
        "<h2 style='margin:0 0 12px'>A leaf used twice: gradients add up</h2>"
        f"<iframe src='{server}{link}' width='960' height='540' style='border:0' "
        "title='Autograd Explorer'></iframe></section></body></html>",
        encoding="utf-8",
    )
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    page.goto(deck.as_uri())
    frame = page.frame_locator("iframe")
    expect(frame.locator('[data-testid="node"]').first).to_be_visible(timeout=30_000)
    expect(frame.get_by_test_id("position")).to_have_text(
        re.compile(r"Backward step 3 of 5"), timeout=30_000
    )
    png = page.screenshot()
    context.close()
    assert keep("slides-reveal", png) == (1280, 720)
