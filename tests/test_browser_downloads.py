"""The Download menu in a real browser: files saved under the lesson's and step's name, and a
deck of every step."""

from __future__ import annotations

import io
import re

import pytest

from tests.browser_support import CHROMIUM

playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
]


def test_downloads_keep_the_lesson_and_step_name_and_decks_hold_every_step(browser, server) -> None:
    from pypdf import PdfReader

    from app.lessons import get_lesson
    from app.tracing import trace_code

    context = browser.new_context(viewport={"width": 1366, "height": 768}, accept_downloads=True)
    page = context.new_page()
    page.goto(f"{server}/#example=shared_weight&step=backward:0:2")
    page.wait_for_selector('[data-testid="node"]')
    playwright_api.expect(page.get_by_test_id("status")).to_have_text(
        re.compile(r"Recorded|记录了"), timeout=20_000
    )
    page.get_by_test_id("download-menu").locator("summary").click()
    with page.expect_download() as svg_download:
        page.get_by_test_id("download-svg").click()
    assert svg_download.value.suggested_filename == "shared_weight-backward-0-3.svg"
    svg = open(svg_download.value.path(), "rb").read().decode()
    assert "backward pass 1 · step 3/5" in svg
    page.get_by_test_id("download-menu").locator("summary").click()
    page.get_by_test_id("download-menu").locator("summary").click()
    with page.expect_download(timeout=60_000) as pdf_download:
        page.get_by_test_id("download-pdf").click()
    assert pdf_download.value.suggested_filename == "shared_weight.pdf"
    with open(pdf_download.value.path(), "rb") as handle:
        pages = len(PdfReader(io.BytesIO(handle.read())).pages)
    graph = trace_code(get_lesson("shared_weight").code)
    assert pages == len(graph.forward) + sum(len(p.steps) for p in graph.backward)
    context.close()
