"""Folds of repeats in a real browser: LSTMCell × 50 as one box, opened, expanded all, by depth."""

from __future__ import annotations

import base64
import re

import pytest

from app.tracing import trace_code
from tests.browser_support import CHROMIUM
from tests.test_repeat_fold import LSTM_LINE, LSTM_PROGRAM, LSTM_STEPS

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
]
FOLD = f"group:fold:line:{LSTM_LINE}"


def boxes(page, kind: str):
    return page.locator(f'[data-testid="node"][data-kind="{kind}"]')


def after_relayout(page, action) -> None:
    """Do something that lays the graph out again, and wait until it is drawn."""
    before = page.evaluate("String(document.querySelectorAll('[data-testid=node]').length)")
    action()
    expect(page.locator('[data-testid="node"]')).not_to_have_count(int(before), timeout=60_000)


def test_lstm_cell_x50_folds_steps_opens_and_expands_all(page) -> None:
    code = base64.urlsafe_b64encode(LSTM_PROGRAM.encode()).decode().rstrip("=")
    page.goto(f"{page.base}/#code={code}")
    fold = page.locator(f'[data-testid="node"][data-node-id="{FOLD}"]')
    expect(fold).to_be_visible(timeout=30_000)
    expect(fold).to_contain_text(f"× {LSTM_STEPS}")
    fill = fold.locator("rect").first.evaluate("(r) => getComputedStyle(r).fill")
    assert fill not in ("rgb(0, 0, 0)", "none"), fill  # drawn in the module's colours, readable
    # every call of the loop is a step of its own, each lighting up the folded box
    expect(page.get_by_test_id("position")).to_have_text(re.compile(r"of \d+"))
    steps = int(re.search(r"of (\d+)", page.get_by_test_id("position").inner_text())[1])
    assert steps == LSTM_STEPS + 1  # the 50 calls one by one; line 10's closed box plays as one
    for _ in range(3):
        before = page.get_by_test_id("position").inner_text()
        page.get_by_test_id("step-forward").click()
        expect(page.get_by_test_id("position")).not_to_have_text(before)
        expect(fold).to_have_class(re.compile(r"\bis-current\b"))
    # a click opens the fold into its iterations, each a closed box, in the fold's frame
    after_relayout(page, fold.click)
    expect(boxes(page, "line")).to_have_count(LSTM_STEPS + 1)  # and line 10's box
    expect(
        page.locator(f'[data-testid="cluster"][data-module="fold:line:{LSTM_LINE}"]')
    ).to_contain_text(f"line {LSTM_LINE} × {LSTM_STEPS}")
    # expand all, from the keyboard: every recorded node is its own box
    nodes = len(trace_code(LSTM_PROGRAM).nodes)
    page.get_by_test_id("expand-all").focus()
    after_relayout(page, lambda: page.keyboard.press("Enter"))
    expect(page.locator('[data-testid="node"]')).to_have_count(nodes)
    assert f"fold%3Aline%3A{LSTM_LINE}" in page.url  # the link keeps the view
    # collapse all, then depth 1: the fold open again, its iterations closed
    after_relayout(page, page.get_by_test_id("collapse-all").click)
    expect(fold).to_be_visible()
    after_relayout(page, lambda: page.get_by_test_id("depth").select_option("1"))
    expect(boxes(page, "line")).to_have_count(LSTM_STEPS)
    expect(fold).to_have_count(0)


def test_the_controls_speak_chinese(page) -> None:
    page.goto(f"{page.base}/")
    page.wait_for_selector('[data-testid="node"]')
    expect(page.get_by_test_id("expand-all")).to_have_attribute("aria-label", "Expand all")
    page.get_by_test_id("lang").select_option("zh")
    expect(page.get_by_test_id("expand-all")).to_have_attribute("aria-label", "全部展开")
    expect(page.get_by_test_id("collapse-all")).to_have_attribute("aria-label", "全部折叠")
    expect(page.get_by_test_id("depth")).to_have_attribute("aria-label", "展开到第几层")


FAILING_BLOCK = """import torch
import torch.nn as nn
class Block(nn.Module):
    def __init__(self, bad):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.bad = bad
    def forward(self, x):
        x = self.fc(x).relu()
        if self.bad:
            x = x @ torch.ones(3, 3)
        return x
model = nn.Sequential(*[Block(i == 9) for i in range(12)])
y = model(torch.randn(2, 8))
"""


def test_a_call_that_raised_in_a_folded_block_opens_its_fold(page) -> None:
    graph = trace_code(FAILING_BLOCK)
    assert graph.error is not None and graph.error.line == 11
    code = base64.urlsafe_b64encode(FAILING_BLOCK.encode()).decode().rstrip("=")
    page.goto(f"{page.base}/#code={code}")
    fold = page.locator('[data-testid="cluster"][data-module="fold:0"]')
    expect(fold).to_be_visible(timeout=30_000)
    expect(fold).to_contain_text("model × 10 · Block")
    expect(page.locator('[data-testid="cluster"][data-module="9"]')).to_be_visible()
    ghost = page.locator(f'[data-testid="node"][data-node-id="{graph.error.node}"]')
    expect(ghost).to_be_visible()
    expect(page.get_by_test_id("error")).to_contain_text("mat1 and mat2")
