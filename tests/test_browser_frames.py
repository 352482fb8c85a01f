"""The explorer on the screens people use: keys typed into the editor, text size on screen, every
node in the frame (or the frame saying it follows the step), present mode and the embed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.lessons import ORDER
from tests.browser_support import (
    ARTIFACTS,
    CHROMIUM,
    GUIDE_IMAGES,
    editor_code,
    type_code,
    wait_until_changed,
)

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
]

ROOT = Path(__file__).resolve().parents[1]


def guide_shot(page, name: str) -> None:
    """The picture docs/guide.md shows of this screen (docs/images/ when updating the guide)."""
    GUIDE_IMAGES.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(GUIDE_IMAGES / f"{name}.png"))
    assert f"images/{name}.png" in (ROOT / "docs" / "guide.md").read_text(encoding="utf-8")


# Text size as the eye gets it: font size times the screen transform of the text's <svg>.
MEASURE = """() => {
  const frame = document.querySelector('#graph');
  const box = frame.getBoundingClientRect();
  const sizes = [];
  for (const text of frame.querySelectorAll('svg text')) {
    if (!text.getBoundingClientRect().width) continue;
    const m = text.getScreenCTM();
    sizes.push(parseFloat(getComputedStyle(text).fontSize) * Math.sqrt(Math.abs(m.a * m.d - m.b * m.c)));
  }
  const inside = (r) => r.left >= box.left - 1 && r.right <= box.right + 1
    && r.top >= box.top - 1 && r.bottom <= box.bottom + 1;
  const nodes = [...frame.querySelectorAll('.node')];
  const out = nodes.filter((n) => !inside(n.querySelector('rect').getBoundingClientRect()));
  const current = nodes.filter((n) => n.classList.contains('is-current'));
  const notice = frame.querySelector('[data-testid="fit-notice"]');
  return {
    smallest: Math.min(...sizes), nodes: nodes.length, outside: out.length,
    currentOutside: current.filter((n) => !inside(n.querySelector('rect').getBoundingClientRect())).length,
    fits: frame.querySelector('.graph-svg').dataset.fits === 'true',
    notice: Boolean(notice && !notice.hidden && inside(notice.getBoundingClientRect())),
    frame: [box.width, box.height],
  };
}"""


@pytest.fixture
def open_page(browser, server, request) -> Iterator:
    """A function that opens a path of the live server at a screen size."""
    contexts = []

    def open_at(path: str, width: int, height: int):
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.errors = errors
        page.goto(f"{server}{path}")
        page.wait_for_selector('[data-testid="node"]', timeout=120_000)
        page.locator("body[data-ready=true], body[data-shown]").wait_for()
        return page

    yield open_at
    ARTIFACTS.mkdir(exist_ok=True)
    for i, context in enumerate(contexts):
        for page in context.pages:
            page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-{i}.png"))
            assert page.errors == []
        context.close()


def check_frame(measured: dict, smallest: float) -> None:
    """Readable text, and every node in the frame unless the frame says it follows the step."""
    assert measured["smallest"] >= smallest - 0.05, measured
    if measured["fits"]:
        assert measured["outside"] == 0, measured
    else:
        assert measured["notice"], measured  # it says so, on the frame itself
        assert measured["currentOutside"] == 0, measured


def test_keys_typed_in_the_editor_arrive_unchanged_and_leave_the_player_alone(open_page) -> None:
    page = open_page("/#example=shared_weight", 1366, 768)
    page.get_by_test_id("live").uncheck()
    position = page.get_by_test_id("position").inner_text()
    program = (
        "import torch\n"
        "w = torch.tensor([2.0], requires_grad=True)\n"
        "y = w\n"
        "for i in range(2):\n"
        "    y = y * w\n"
        "y.backward()\n"
        "print(w.grad)"
    )
    type_code(page, program)
    for key in ("Home", "End", "ArrowLeft", "ArrowRight", "PageUp", "PageDown"):
        page.keyboard.press(key)  # the editor's cursor moves; the player does not
    assert editor_code(page) == program
    assert page.get_by_test_id("position").inner_text() == position
    assert page.evaluate("document.activeElement.closest('.cm-editor') !== null")
    page.keyboard.press("Escape")  # the keyboard goes back to the page: arrows step again
    page.keyboard.press("ArrowRight")
    expect(page.get_by_test_id("position")).not_to_have_text(position)
    assert editor_code(page) == program
    before = page.evaluate("document.body.dataset.shown")
    page.get_by_test_id("editor").click()
    page.keyboard.press("Control+Enter")
    wait_until_changed(page, "shown", before, timeout=30_000)
    expect(page.get_by_test_id("stdout")).to_contain_text("tensor([12.])")  # d(w³)/dw = 3·2²
    guide_shot(page, "screen-1366")


@pytest.mark.parametrize(("width", "height"), [(1366, 768), (1024, 768)])
def test_every_lesson_reads_at_12px_on_a_laptop(open_page, width, height) -> None:
    for example in ORDER:
        page = open_page(f"/#example={example}", width, height)
        page.keyboard.press("ArrowRight")
        check_frame(page.evaluate(MEASURE), 12)
        if width == 1024 and example == "two_layer_relu":
            guide_shot(page, "screen-1024")
        page.context.close()


def test_every_lesson_in_a_960x540_embed_reads_at_14px(open_page) -> None:
    fitted = []
    for example in ORDER:
        page = open_page(f"/embed#example={example}", 960, 540)
        for key in ("End", "Home", "PageDown"):  # what a clicker sends, the last step and back
            page.keyboard.press(key)
            measured = page.evaluate(MEASURE)
            check_frame(measured, 14)
        fitted.append(measured["fits"])
        if example == "mlp_cross_entropy":
            guide_shot(page, "screen-embed-960")
        page.context.close()
    assert sum(fitted) >= len(ORDER) // 2, fitted  # most lessons show whole at slide size


def test_present_mode_on_a_projector_scales_captions_and_keeps_the_frame_still(open_page) -> None:
    page = open_page("/#example=shared_weight", 1920, 1080)
    page.get_by_test_id("present").click()
    expect(page.locator("body")).to_have_class(re.compile("presenting"))
    check_frame(page.evaluate(MEASURE), 14)
    frames, positions = set(), []
    for _ in range(7):
        page.keyboard.press("PageDown")  # a presenter's clicker
        frames.add(tuple(page.evaluate(MEASURE)["frame"]))
        positions.append(page.get_by_test_id("position").inner_text())
    assert len(frames) == 1, frames  # the graph's frame never jumps between steps
    assert len(set(positions)) == len(positions), positions  # every click took a step
    assert re.search("Backward", positions[-1])
    page.keyboard.press("PageUp")
    assert page.get_by_test_id("position").inner_text() == positions[-2]
    caption_px = page.evaluate(
        "parseFloat(getComputedStyle(document.querySelector('[data-testid=caption]')).fontSize)"
    )
    assert caption_px >= 20  # read from the back of the room, like the graph
    guide_shot(page, "screen-present-1920")


def test_a_900px_notebook_cell_fits_its_graph_and_has_zoom_controls(browser) -> None:
    import torch
    from torch import nn

    from app.notebook import explore

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    loss = nn.functional.cross_entropy(model(torch.randn(5, 4)), torch.tensor([0, 1, 2, 0, 1]))
    cell = explore(loss)._repr_html_()
    context = browser.new_context(viewport={"width": 900, "height": 700})
    page = context.new_page()
    page.set_content(f"<!doctype html><html><body style='margin:0'>{cell}</body></html>")
    frame = page.frame_locator("iframe.autograd-explorer")
    frame.locator("body[data-ready=true]").wait_for()
    inner = next(f for f in page.frames if f != page.main_frame)
    check_frame(inner.evaluate(MEASURE), 14)
    svg = frame.locator(".graph-svg")
    scale = float(svg.get_attribute("data-scale"))
    frame.get_by_test_id("zoom-in").click()
    assert float(svg.get_attribute("data-scale")) > scale
    frame.get_by_test_id("fit").click()
    if svg.get_attribute("data-fits") == "true":
        assert float(svg.get_attribute("data-scale")) == pytest.approx(scale)
    ARTIFACTS.mkdir(exist_ok=True)
    guide_shot(page, "screen-notebook-900")
    context.close()
