"""At 1366×768 and 1024×768: errors over the graph, the inspector's tables, focus and 中文."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator

import pytest

from tests.browser_support import ARTIFACTS, CHROMIUM, wait_until_changed

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
]

LAPTOPS = [{"width": 1366, "height": 768}, {"width": 1024, "height": 768}]
LAPTOP_IDS = ["1366x768", "1024x768"]

SHAPE_MISTAKE = (
    "import torch\n"
    "import torch.nn as nn\n"
    "model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(5, 2))\n"
    "x = torch.randn(3, 4)\n"
    "y = model(x)\n"
)
BACKWARD_TWICE = (
    "import torch\n"
    "x = torch.tensor([2.0], requires_grad=True)\n"
    "y = x * x\n"
    "y.backward()\n"
    "y.backward()\n"
)
WEIGHT_16X4 = (
    "import torch\n"
    "w = torch.randn(16, 4, requires_grad=True)\n"
    "loss = (w * 2).sum()\n"
    "loss.backward()\n"
)


@pytest.fixture
def open_page(browser, server, request) -> Iterator[object]:
    """A function that opens the explorer at a viewport size; every page checked for errors."""
    opened: list[tuple[object, object, list[str]]] = []

    def open_at(viewport: dict[str, int]):
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.base = server
        opened.append((context, page, errors))
        return page

    yield open_at
    ARTIFACTS.mkdir(exist_ok=True)
    for i, (context, page, errors) in enumerate(opened):
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-{i}.png"))
        context.close()
        assert errors == []


def wait_done(page) -> None:
    expect(page.get_by_test_id("status")).to_have_text(
        re.compile(r"Recorded|记录了"), timeout=30_000
    )


def open_example(page, example: str) -> None:
    page.goto(f"{page.base}/#example={example}")
    page.wait_for_selector('[data-testid="node"]')
    wait_done(page)


def type_program(page, code: str) -> None:
    """Replace the program key by key, as a person types it, and run it."""
    page.get_by_test_id("editor").click()
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    for line in code.splitlines():
        page.keyboard.type(line)
        page.keyboard.press("Enter")
    before = page.evaluate("document.body.dataset.shown ?? '0'")
    page.keyboard.press("Control+Enter")
    wait_until_changed(page, "shown", before, timeout=30_000)


def inspect_w(page, program: str):
    """Type the program key by key over an example, run it, and open w in the inspector."""
    open_example(page, "linear_expression")
    type_program(page, program)
    wait_done(page)
    page.locator('[data-testid="node"][data-name="w"]').click()
    return page.get_by_test_id("inspector")


def inside_viewport(page, locator) -> None:
    """The element's whole box lies inside the viewport: the reader need not scroll to it."""
    box = locator.bounding_box()
    size = page.viewport_size
    assert box is not None
    assert inside(box, {"x": 0, "y": 0, **size}), box


def inside(inner: dict, outer: dict, slack: float = 1) -> bool:
    return (
        inner["x"] >= outer["x"] - slack
        and inner["y"] >= outer["y"] - slack
        and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + slack
        and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + slack
    )


@pytest.mark.parametrize("viewport", LAPTOPS, ids=LAPTOP_IDS)
def test_the_in_place_lesson_shows_its_error_over_the_graph(open_page, viewport) -> None:
    page = open_page(viewport)
    open_example(page, "inplace_leaf_error")
    banner = page.get_by_test_id("error")
    expect(banner).to_be_visible()
    expect(banner).to_have_attribute("role", "alert")
    line = page.locator("#editor").get_attribute("data-error-line")  # the red line stays
    assert page.locator("#editor .cm-error-line").inner_text().strip() == "w.add_(1)"
    expect(banner).to_contain_text(f"RuntimeError at line {line}")
    expect(banner.locator(".torch-message")).to_contain_text("in-place operation")
    inside_viewport(page, banner)
    assert page.evaluate("window.scrollY") == 0  # as the lesson opens, nothing scrolled
    assert inside(banner.bounding_box(), page.get_by_test_id("graph").bounding_box())
    page.get_by_test_id("error-close").click()
    expect(banner).to_be_hidden()
    assert page.locator("#editor").get_attribute("data-error-line") == line


@pytest.mark.parametrize("viewport", LAPTOPS, ids=LAPTOP_IDS)
def test_a_shape_mistake_in_linear_opens_its_module_at_the_ghost_op(open_page, viewport) -> None:
    page = open_page(viewport)
    open_example(page, "linear_expression")
    type_program(page, SHAPE_MISTAKE)
    banner = page.get_by_test_id("error")
    expect(banner).to_contain_text("RuntimeError at line 5")
    expect(banner).to_contain_text("3x8 and 5x2")
    inside_viewport(page, banner)
    frame = page.locator('[data-testid="cluster"][data-module="2"]')
    expect(frame).to_be_visible()  # the module that holds the call that raised is open
    assert "expanded=2" in page.url
    ghost = page.locator(".node.failed")
    expect(ghost).to_have_count(1)
    expect(ghost).to_have_class(re.compile("is-current"))
    expect(ghost.locator(".badge-text")).to_contain_text(re.compile(r"3x8\s*and 5x2"))  # in lines
    graph = page.get_by_test_id("graph").bounding_box()
    for part in (ghost.locator("rect"), ghost.locator(".badge-text")):
        inside_viewport(page, part)
        assert inside(part.bounding_box(), graph)
    assert inside(ghost.bounding_box(), frame.bounding_box())


@pytest.mark.parametrize("viewport", LAPTOPS, ids=LAPTOP_IDS)
def test_backward_twice_is_pinned_on_the_graph_at_its_pass(open_page, viewport) -> None:
    page = open_page(viewport)
    open_example(page, "linear_expression")
    type_program(page, BACKWARD_TWICE)
    banner = page.get_by_test_id("error")
    expect(banner).to_contain_text("RuntimeError in backward pass 2 from y, line 5")
    expect(banner).to_contain_text("backward through the graph a second time")
    inside_viewport(page, banner)
    assert page.locator("#editor").get_attribute("data-error-line") == "5"
    # opened at the end of the pass that ran, the tensor the failed pass started from in red
    expect(page.get_by_test_id("position")).to_have_text(re.compile("Backward step 2 of 2"))
    y = page.locator('[data-testid="node"][data-name="y"]')
    expect(y).to_have_class(re.compile("failed-root"))
    mark = y.get_by_test_id("failed-mark")
    expect(mark).to_contain_text("✗ backward()")
    inside_viewport(page, y.locator("rect"))
    inside_viewport(page, mark)
    error_colour = page.evaluate(
        "getComputedStyle(document.documentElement).getPropertyValue('--error').trim()"
    )
    stroke = y.locator("rect").evaluate("(r) => getComputedStyle(r).stroke")
    probe = page.evaluate(
        "(c) => { const d = document.createElement('div'); d.style.color = c; document.body.append(d);"
        " const v = getComputedStyle(d).color; d.remove(); return v; }",
        error_colour,
    )
    assert stroke == probe
    assert "backward pass 2" in y.get_attribute("aria-label")


@pytest.mark.parametrize("viewport", LAPTOPS, ids=LAPTOP_IDS)
def test_a_16_by_4_weight_shows_all_four_columns(open_page, viewport) -> None:
    page = open_page(viewport)
    table = inspect_w(page, WEIGHT_16X4).locator("table.values").first
    expect(table).to_be_visible()
    assert table.locator("tr").count() == 16
    table.scroll_into_view_if_needed()
    box = table.bounding_box()
    inspector = page.get_by_test_id("inspector").bounding_box()
    cells = table.locator("tr").first.locator("td")
    assert cells.count() == 4
    for i in range(4):
        cell = cells.nth(i).bounding_box()
        # each column inside the table's box and the inspector, nothing hidden behind a scroll
        assert inside({**cell, "y": box["y"], "height": 0}, box), (i, cell, box)
        assert cell["x"] + cell["width"] <= inspector["x"] + inspector["width"] + 1
        assert cell["x"] + cell["width"] <= viewport["width"]
    assert table.evaluate("(t) => t.scrollWidth <= t.clientWidth + 1")
    font = float(cells.first.evaluate("(c) => parseFloat(getComputedStyle(c).fontSize)"))
    assert font >= 12


def test_the_wheel_over_the_graph_scrolls_the_page_to_the_inspector(open_page) -> None:
    page = open_page({"width": 1024, "height": 768})
    open_example(page, "shared_weight")
    page.locator('[data-testid="node"][data-name="w"]').click()
    scale = page.locator(".graph-svg").get_attribute("data-scale")
    graph = page.get_by_test_id("graph").bounding_box()
    page.mouse.move(graph["x"] + graph["width"] / 2, graph["y"] + graph["height"] / 2)
    page.mouse.wheel(0, 600)
    # the page scrolled (the graph did not zoom) until the inspector came into view
    expect(page.get_by_test_id("inspector-title")).to_be_in_viewport()
    assert page.evaluate("window.scrollY") > 0
    assert page.locator(".graph-svg").get_attribute("data-scale") == scale
    page.evaluate("window.scrollTo(0, 0)")
    page.mouse.move(graph["x"] + graph["width"] / 2, graph["y"] + graph["height"] / 2)
    page.keyboard.down("Control")
    page.mouse.wheel(0, -200)  # Ctrl+wheel (a touchpad's pinch) zooms
    page.keyboard.up("Control")
    expect(page.locator(".graph-svg")).not_to_have_attribute("data-scale", scale)
    assert float(page.locator(".graph-svg").get_attribute("data-scale")) > float(scale)
    assert page.evaluate("window.scrollY") == 0


def test_enter_on_a_module_box_keeps_the_focus(open_page) -> None:
    page = open_page({"width": 1366, "height": 768})
    open_example(page, "mlp_cross_entropy")
    box = page.locator('[data-testid="node"][data-node-id="group:fc1"]')
    box.focus()
    page.keyboard.press("Enter")
    frame = page.locator('[data-testid="cluster"][data-module="fc1"]')
    expect(frame).to_be_visible()
    label = frame.locator(".cluster-label")
    expect(label).to_be_focused()  # the frame label now stands for the module
    page.keyboard.press("Enter")  # and collapses it again from the keyboard
    expect(box).to_be_visible()
    expect(box).to_be_focused()
    assert "expanded" not in page.url or "fc1" not in page.url.split("expanded=")[1].split("&")[0]


# Words a page in Chinese may still show in Latin letters: Python and torch's own names, file
# formats and proper names. Every other visible word must be translated.
KEPT_WORDS = {
    "None",
    "True",
    "False",
    "torch",
    "CPU",
    "CUDA",
    "SVG",
    "PNG",
    "HTML",
    "DOT",
    "English",
    "grad",
    "backward",
    "requires_grad",
    "is_leaf",
    "retains_grad",
    "grad_fn",
    "grad_outputs",
    "grad_inputs",
    "variable",
    "retain_grad",
    "dtype",
    "float32",
    "int64",
    "nan",
    "inf",
    "e",
    "cpu",
    "cuda",
}


def latin_words(page) -> list[str]:
    """Visible texts without a Chinese character that hold a word of two Latin letters or more."""
    return page.evaluate(
        """() => {
      // code, torch's own quoted words (marked lang="en") and formulas (the rules' prose is
      // the server's, in the reader's language by the rule's own translation)
      const skip = '.cm-editor, code, pre, body [lang="en"], math, title, script, style, #embed-snippet';
      const found = [];
      const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
      while (walker.nextNode()) {
        const node = walker.currentNode;
        const text = node.textContent.trim();
        const parent = node.parentElement;
        if (!text || !/[A-Za-z]{2,}/.test(text) || /[\\u3000-\\u9fff\\uff00-\\uffef]/.test(text)) continue;
        if (!parent || parent.closest(skip)) continue;
        const option = parent.closest('option');
        if (option && !option.selected) continue;
        if (!parent.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true })) continue;
        if (!parent.closest('details[open], :not(details)') || parent.closest('details:not([open]) > :not(summary)')) continue;
        const rects = parent.getClientRects();
        if (!rects.length || [...rects].every((r) => r.width === 0 || r.height === 0)) continue;
        found.push(text);
      }
      return found;
    }"""
    )


def untranslated(texts: list[str], code_words: set[str]) -> list[str]:
    left = []
    for text in texts:
        for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text):
            code_like = (
                "_" in word or any(c.isdigit() for c in word) or re.search(r"[a-z][A-Z]", word)
            )
            if len(word) < 2 or code_like or word in KEPT_WORDS or word in code_words:
                continue
            left.append(f"{word!r} in {text!r}")
    return left


def code_words(page, code: str) -> set[str]:
    """Identifiers of the program and every name the recording gives its nodes and modules."""
    graph = page.request.post(page.base + "/api/v1/trace", data={"code": code}).json()
    texts = [code]
    for node in graph["nodes"]:
        texts += [str(node.get(k) or "") for k in ("label", "name", "op", "grad_fn", "dtype")]
        texts += [saved["name"] for saved in node.get("saved", [])]  # torch's saved attributes
    texts += [f"{path} {text}" for path, text in graph.get("modules", {}).items()]
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", " ".join(texts)))


@pytest.mark.parametrize(
    "example", ["shared_weight", "mlp_cross_entropy", "inplace_leaf_error", "grad_accumulation"]
)
def test_chinese_translates_every_visible_string(open_page, example) -> None:
    page = open_page({"width": 1366, "height": 768})
    open_example(page, example)
    english = untranslated(latin_words(page), set())
    assert any("'Gallery'" in found for found in english)  # the scan sees the page's words
    page.get_by_test_id("lang").select_option("zh")
    # the status line is said again at once, in Chinese
    expect(page.get_by_test_id("status")).to_have_text(re.compile("^记录了"))
    expect(page.locator(".graph-svg")).to_have_attribute("aria-label", "自动求导计算图")
    code = page.evaluate(
        "[...document.querySelectorAll('#editor .cm-line')].map((l) => l.textContent).join('\\n')"
    )
    names = code_words(page, code)
    page.get_by_test_id("to-end").click()
    ops = page.locator('[data-testid="node"][data-kind="op"]')
    views, labels = [], set()
    for i in range(min(ops.count(), 3)):  # an op's fields (grad_outputs, grad_inputs, variable)
        ops.nth(i).click()
        views += latin_words(page)
        labels |= set(page.get_by_test_id("inspector").locator("dt").all_inner_texts())
    tensors = page.locator('[data-testid="node"][data-kind="tensor"]')
    if tensors.count():
        tensors.first.click()
        views += latin_words(page)
    left = sorted(set(untranslated(views, names)))
    assert not left, "\n".join(left)
    if example != "inplace_leaf_error":  # at the end of backward an op shows its gradients
        assert {"输出端梯度 grad_outputs", "输入端梯度 grad_inputs"} <= labels, labels


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_axe_finds_no_serious_violation_with_an_error_shown(open_page, theme) -> None:
    from tests.test_teaching import run_axe

    page = open_page({"width": 1024, "height": 768})
    code = "import torch\nx = torch.tensor([2.0], requires_grad=True)\ny = x * x\ny.backward()\ny.backward()\n"
    page.goto(f"{page.base}/#code={base64.urlsafe_b64encode(code.encode()).decode()}")
    page.wait_for_selector('[data-testid="node"]')
    wait_done(page)
    if page.evaluate("document.documentElement.dataset.theme") != theme:
        page.get_by_test_id("theme").click()
    expect(page.get_by_test_id("error")).to_be_visible()
    assert run_axe(page) == []


WEIGHT_300X300 = (
    "import torch\n"
    "w = torch.randn(300, 300, requires_grad=True)\n"
    "loss = (w * 2).sum()\n"
    "loss.backward()\n"
)


@pytest.mark.parametrize("viewport", LAPTOPS, ids=LAPTOP_IDS)
def test_a_big_weights_histogram_says_it_counts_a_sample(open_page, viewport) -> None:
    page = open_page(viewport)
    inspector = inspect_w(page, WEIGHT_300X300)
    expect(inspector.locator("svg.histogram").first).to_be_visible()
    note = inspector.get_by_test_id("histogram-sample").first
    expect(note).to_have_text("histogram of 65,536 values spread evenly over all 90,000")
    note.scroll_into_view_if_needed()
    inside_viewport(page, note)  # wrapped inside the inspector, not cut off at its side
    font = float(note.evaluate("(n) => parseFloat(getComputedStyle(n).fontSize)"))
    assert font >= 12
    bars = inspector.locator("svg.histogram").first.locator("rect title")
    counted = sum(int(bars.nth(i).text_content().rsplit(": ", 1)[1]) for i in range(bars.count()))
    assert counted == 65_536
