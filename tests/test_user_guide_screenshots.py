"""The pictures of docs/guide.md, taken from the real explorer in a browser (1024×640 PNGs),
each after checking that the page shows what the guide says it shows.

They are written to tests/artifacts/guide/; with AE_UPDATE_GUIDE_IMAGES=1 they replace
docs/images/, so a run of the suite leaves the checkout as it was."""

from __future__ import annotations

import base64
import re
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.browser_support import CHROMIUM, GUIDE_IMAGES

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
]

ROOT = Path(__file__).resolve().parents[1]
IMAGES = GUIDE_IMAGES
SIZE = {"width": 1024, "height": 640}  # of the PNGs
# The page is laid out at 1280×800 (its three columns need more than 1100 px) and drawn at 0.8.
VIEWPORT, SCALE = {"width": 1280, "height": 800}, 0.8


@pytest.fixture
def page(browser, server) -> Iterator[object]:
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=SCALE)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.base = server
    yield page
    context.close()
    assert errors == []


def shoot(page, name: str) -> None:
    """Write NAME.png at the guide's size (docs/images/ when updating the guide)."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    path = IMAGES / f"{name}.png"
    page.screenshot(path=str(path))
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (SIZE["width"], SIZE["height"])
    assert (ROOT / "docs" / "guide.md").read_text(encoding="utf-8").count(f"images/{name}.png")


def open_example(page, example: str, extra: str = "") -> None:
    page.goto(f"{page.base}/#example={example}{extra}")
    page.wait_for_selector('[data-testid="node"]')
    expect(page.get_by_test_id("status")).to_have_text(
        re.compile(r"Recorded|记录了"), timeout=30_000
    )


def node(page, name: str):
    return page.locator(f'[data-testid="node"][data-name="{name}"]')


def test_explorer_overview(page) -> None:
    open_example(page, "shared_weight")
    assert page.get_by_test_id("gallery").locator("li").count() >= 10
    expect(node(page, "w")).to_be_visible()
    expect(page.get_by_test_id("player-bar")).to_be_visible()
    shoot(page, "explorer")


def test_forward_step(page) -> None:
    open_example(page, "shared_weight")
    page.get_by_test_id("to-start").click()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_test_id("position")).to_have_text(re.compile("Forward step 2 of 3"))
    assert page.locator(".node.is-current").count() >= 1
    shoot(page, "forward")


def test_backward_gradients_meet_and_inspector(page) -> None:
    open_example(page, "shared_weight")
    page.get_by_test_id("to-end").click()
    node(page, "w").click()
    expect(node(page, "w").locator(".badge-text")).to_contain_text("= [5.]")
    expect(page.get_by_test_id("inspector").get_by_test_id("dot-grad")).to_contain_text("[5.]")
    shoot(page, "backward")


def test_modules_expand(page) -> None:
    open_example(page, "mlp_cross_entropy")
    page.locator('[data-testid="node"][data-node-id="group:fc1"]').click()
    expect(page.locator('[data-testid="cluster"][data-module="fc1"]')).to_be_visible()
    shoot(page, "modules")


def test_error_pinned_to_its_line(page) -> None:
    open_example(page, "inplace_leaf_error")
    expect(page.get_by_test_id("error")).to_contain_text("line")
    assert page.locator('[data-testid="node"]').count() > 0
    shoot(page, "error")


def test_backward_twice_pinned_at_its_pass(page) -> None:
    code = "import torch\nx = torch.tensor([2.0], requires_grad=True)\ny = x * x\ny.backward()\ny.backward()\n"
    encoded = base64.urlsafe_b64encode(code.encode()).decode().rstrip("=")
    open_example(page, "linear_expression", f"&code={encoded}")
    expect(page.get_by_test_id("error")).to_contain_text("backward pass 2 from y, line 5")
    expect(node(page, "y")).to_have_class(re.compile("failed-root"))
    shoot(page, "backward-twice")


def test_training_series(page) -> None:
    open_example(page, "linear_regression")
    expect(page.get_by_test_id("series")).to_be_visible()
    assert page.locator('[data-testid="series"] canvas').count() >= 1  # uPlot draws on a canvas
    assert page.locator('[data-testid="series"] .series-legend li').count() >= 2
    shoot(page, "training")


def test_chinese_and_dark(page) -> None:
    open_example(page, "shared_weight")
    page.get_by_test_id("lang").select_option("zh")
    expect(page.get_by_test_id("run")).to_contain_text("运行")
    if page.evaluate("document.documentElement.dataset.theme") != "dark":
        page.get_by_test_id("theme").click()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    shoot(page, "chinese-dark")


def test_embed(page) -> None:
    page.goto(f"{page.base}/embed#example=shared_weight&step=backward:0:4")
    page.wait_for_selector('[data-testid="node"]')
    expect(page.get_by_test_id("position")).to_have_text(re.compile("Backward step 5 of 5"))
    assert page.get_by_test_id("editor").count() == 0
    shoot(page, "embed")


def test_notebook_output(page) -> None:
    from app import explore

    w = torch.tensor([1.0], requires_grad=True)
    x = torch.tensor([2.0], requires_grad=True)
    y = (x + w) * (w + 1)
    shown = explore(y).with_view(height=600)._repr_html_()
    page.set_content(
        '<!doctype html><html><body style="margin:12px;font-family:sans-serif">'
        '<pre style="margin:0 0 6px">[2]: explore(y)</pre>'
        f"{shown}</body></html>"
    )
    frame = page.frame_locator("iframe.autograd-explorer")
    frame.locator("body[data-ready=true]").wait_for()
    frame.get_by_test_id("to-end").click()
    expect(frame.locator('[data-testid="node"][data-name="w"] .badge-text')).to_contain_text(
        "= [5.]"
    )
    assert w.grad is None and x.grad is None
    shoot(page, "notebook")
