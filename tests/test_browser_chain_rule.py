"""The chain rule in a real browser: sums where gradients meet, MathML rules, captions, live mode."""

from __future__ import annotations

import re

import pytest

from tests.browser_support import editor_code, retype, type_at_end, type_code, wait_until_changed
from tests.test_browser import after_new_graph, node, open_example, playwright_api

pytestmark = pytest.mark.browser
expect = playwright_api.expect


def op_node(page, grad_fn: str, index: int = 0):
    """The index-th drawn op node whose grad_fn is grad_fn."""
    ids = page.evaluate(
        """(fn) => [...document.querySelectorAll('[data-testid="node"][data-kind="op"]')]
            .filter((n) => n.textContent.includes(fn)).map((n) => n.dataset.nodeId)""",
        grad_fn,
    )
    return page.locator(f'[data-testid="node"][data-node-id="{ids[index]}"]')


def test_inspector_of_w_at_the_end_reads_2_plus_3_is_5(page) -> None:
    open_example(page, "shared_weight")
    page.get_by_test_id("to-end").click()
    node(page, "w").click()
    inspector = page.get_by_test_id("inspector")
    expect(inspector.get_by_test_id("meet")).to_have_text(re.compile(r"^(2 \+ 3|3 \+ 2) = 5$"))
    expect(inspector.get_by_test_id("accumulate")).to_have_text("w.grad = None + 5 = 5")


def test_inspector_typesets_the_rule_of_the_selected_op_in_mathml(page) -> None:
    open_example(page, "shared_weight")
    page.get_by_test_id("to-end").click()
    op_node(page, "MulBackward0").click()
    rule = page.get_by_test_id("inspector").get_by_test_id("rule")
    expect(rule).to_be_visible()
    assert rule.get_attribute("data-grad-fn") == "MulBackward0"
    maths = rule.evaluate(
        """(r) => [...r.querySelectorAll('math')].map((m) => ({
            ns: m.namespaceURI,
            frac: m.querySelector('mfrac') ? [...m.querySelector('mfrac').children].map((c) => c.textContent) : null,
            text: m.textContent.replace(/\\s+/g, ''),
        }))"""
    )
    assert all(m["ns"] == "http://www.w3.org/1998/Math/MathML" for m in maths)
    fractions = [m for m in maths if m["frac"]]
    assert {tuple(m["frac"]) for m in fractions} == {("∂y", "∂a"), ("∂y", "∂b")}
    texts = [m["text"] for m in maths]
    assert "y=a·b" in texts
    assert "∂y∂a=b" in texts
    assert "grad_a=grad_y·b" in texts and "=1·2=2" in texts
    assert "grad_b=grad_y·a" in texts and "=1·3=3" in texts
    # the fraction is drawn as one (its height exceeds a line of text)
    height = rule.locator("mfrac").first.evaluate("(f) => f.getBoundingClientRect().height")
    line = rule.locator(".rule-expression math").evaluate("(m) => m.getBoundingClientRect().height")
    assert height > line


def test_backward_caption_in_chinese(page) -> None:
    page.goto(f"{page.base}/#example=shared_weight&lang=zh&step=backward:0:3")
    page.wait_for_selector('[data-testid="node"]')
    caption = page.get_by_test_id("caption")
    expect(caption).to_be_visible()
    text = caption.get_by_test_id("caption-text")
    expect(text).to_contain_text("两条路径在 w 处汇合")
    expect(text).to_contain_text("2 + 3 = 5")
    assert text.get_attribute("lang") == "zh-CN"
    expect(caption.get_by_test_id("rule-meet")).to_have_text(
        re.compile(r"^梯度在 w 处汇合: (2 \+ 3|3 \+ 2) = 5$")
    )
    page.get_by_test_id("step-back").click()  # the step before: a = w + x
    expect(caption.get_by_test_id("caption-text")).to_contain_text("局部导数都是 1")
    expect(caption.locator(".rule-expression math")).to_have_text(re.compile(r"a\s*=\s*w\s*\+\s*x"))


def test_caption_follows_backward_playback(page) -> None:
    open_example(page, "linear_expression")
    page.get_by_test_id("to-start").click()
    caption = page.get_by_test_id("caption")
    expect(caption.get_by_test_id("caption-text")).to_contain_text("not track it")
    for _ in range(4):  # forward 2 of 2, then backward 1..3
        page.get_by_test_id("step-forward").click()
    expect(page.get_by_test_id("position")).to_have_text(re.compile("Backward step 3 of 4"))
    expect(caption.get_by_test_id("rule")).to_have_attribute("data-grad-fn", "MulBackward0")
    texts = caption.locator("math").evaluate_all(
        "(ms) => ms.map((m) => m.textContent.replace(/\\s+/g, ''))"
    )
    assert "grad_w=grad_(x·w)·x" in texts and "=1·3=3" in texts  # x * w: its box's label


def test_live_mode_traces_after_typing_without_run(page) -> None:
    open_example(page, "shared_weight")
    assert page.get_by_test_id("live").is_checked()
    page.get_by_test_id("to-end").click()
    position = page.get_by_test_id("position").inner_text()
    code = editor_code(page)
    assert "w = torch.tensor([1.]" in code
    # same graph shape, new numbers: w = 3 gives dy/dw = (w + 1) + (w + x) = 4 + 5 = 9
    # one key over the 1: every state the editor passes through is a whole program
    after_new_graph(page, lambda: retype(page, "1", "3"))
    expect(page.get_by_test_id("position")).to_have_text(position)  # the step is kept
    node(page, "w").click()
    expect(page.get_by_test_id("dot-grad")).to_contain_text("[9.]")
    expect(page.get_by_test_id("meet")).to_have_text(re.compile(r"^(4 \+ 5|5 \+ 4) = 9$"))
    # a new shape starts over; turning live off stops tracing on typing
    after_new_graph(page, lambda: retype(page, "y.backward()", "z = y * 2\nz.backward()"))
    expect(node(page, "z")).to_be_visible()
    page.get_by_test_id("live").uncheck()
    shown = page.evaluate("document.body.dataset.shown")
    type_code(page, code)
    page.get_by_test_id("run").click()
    wait_until_changed(page, "shown", shown)
    assert page.evaluate("document.body.dataset.shown") == str(int(shown) + 1)
    expect(node(page, "z")).to_have_count(0)


def test_live_mode_keeps_the_graph_while_the_code_is_half_typed(page) -> None:
    open_example(page, "shared_weight")
    code = editor_code(page)
    before = page.evaluate("document.body.dataset.failures ?? '0'")
    type_at_end(page, "\nz = (y *\n")
    wait_until_changed(page, "failures", before)
    expect(page.get_by_test_id("error")).to_contain_text("SyntaxError")
    expect(node(page, "w")).to_be_visible()
    assert editor_code(page) == code + "\nz = (y *\n"  # what was typed stays as typed
    after_new_graph(page, lambda: retype(page, "z = (y *\n", "z = (y * 2).sum()\n"))
    expect(page.get_by_test_id("error")).to_be_hidden()
    expect(node(page, "z")).to_be_visible()


def test_rule_words_are_in_the_readers_language(page) -> None:
    page.goto(f"{page.base}/#example=mlp_cross_entropy&lang=zh")
    page.wait_for_selector('[data-testid="node"]')
    words = page.get_by_test_id("caption").get_by_test_id("rule-words")
    for _ in range(60):  # step until a rule with words (the loss's one_hot) is under the player
        if words.count():
            break
        page.keyboard.press("ArrowRight")
    text = words.first.inner_text()
    assert re.search(r"[\u4e00-\u9fff]", text), text  # Chinese words
    assert "  " not in text and not re.search(r"[a-z]{12,}", text), text  # no words run together
