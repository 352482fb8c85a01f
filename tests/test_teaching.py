"""The explorer as a lecturer and a student use it: sizes, slides, contrast, language, keyboard."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.badges import badge_lines
from app.lessons import ORDER, get_lesson
from tests.browser_support import ARTIFACTS, CHROMIUM, type_code, wait_until_changed

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
]

AXE = Path(__file__).resolve().parents[1] / "static" / "vendor" / "axe" / "axe.min.js"
VIEWS = ARTIFACTS / "views"
SIZES = {"1024x768": (1024, 768), "390x844": (390, 844)}
MICROGRAD = """import torch

a = torch.tensor(-4.0, dtype=torch.double, requires_grad=True)
b = torch.tensor(2.0, dtype=torch.double, requires_grad=True)
c = a + b
d = a * b + b**3
c = c + c + 1
c = c + 1 + c + (-a)
d = d + d * 2 + (b + a).relu()
d = d + 3 * d + (b - a).relu()
e = c - d
f = e**2
g = f / 2.0
g = g + 10.0 / f
g.backward()
"""


@pytest.fixture(scope="module")
def pages(browser) -> Iterator[dict[str, object]]:
    """One page per window size, reused by every test of the module."""
    opened = {}
    for name, (width, height) in {**SIZES, "embed": (1000, 600), "1440x900": (1440, 900)}.items():
        context = browser.new_context(viewport={"width": width, "height": height})
        opened[name] = context.new_page()
    yield opened
    for page in opened.values():
        page.context.close()


def wait_shown(page, before: str) -> None:
    wait_until_changed(page, "shown", before, timeout=30_000)
    expect(page.locator("body")).not_to_have_attribute("data-busy", "true", timeout=30_000)


def open_lesson(page, base: str, example: str, extra: str = "") -> None:
    page.goto("about:blank")  # a new document: a changed hash alone would not reload
    page.goto(f"{base}/#example={example}{extra}")
    wait_shown(page, "0")


def run_program(page, code: str) -> None:
    """Put code in the editor, run it and wait for its graph."""
    page.get_by_test_id("live").uncheck()  # one trace, of the whole program
    type_code(page, code)
    before = page.evaluate("document.body.dataset.shown")
    page.get_by_test_id("run").click()
    wait_shown(page, before)


def to_end(page_or_frame) -> None:
    page_or_frame.get_by_test_id("to-end").click()


# Boxes that leave the frame, for every drawn node (or only the current ones when the graph
# is larger than the frame and the view follows the step).
OUTSIDE = """(graph) => {
  const frame = graph.getBoundingClientRect();
  const svg = graph.querySelector('svg.graph-svg');
  const all = svg.dataset.fits === 'true';
  const nodes = [...graph.querySelectorAll(all ? '.node' : '.node.is-current')];
  const out = [];
  for (const node of nodes) {
    for (const part of [node.querySelector('rect'), node.querySelector('.badge-text')]) {
      const r = part.getBoundingClientRect();
      if (!r.width) continue;
      if (r.left < frame.left - 1 || r.right > frame.right + 1 || r.top < frame.top - 1
          || r.bottom > frame.bottom + 1) out.push(node.dataset.nodeId + ':' + part.tagName);
    }
  }
  return { fits: all, out };
}"""

# Controls whose box runs past the window's right edge (clipped header or player).
CLIPPED = """() => [...document.querySelectorAll('button, select, summary, input, a')]
  .filter((e) => e.getClientRects().length && getComputedStyle(e).visibility !== 'hidden')
  .filter((e) => !e.closest('.graph') && !e.closest('.menu-body'))
  .filter((e) => e.getBoundingClientRect().right > innerWidth + 1 || e.getBoundingClientRect().left < -1)
  .map((e) => e.outerHTML.slice(0, 80))"""

# The smallest text on screen in px: HTML by its computed size, SVG text times the zoom.
SMALLEST_TEXT = """() => {
  const scale = Number(document.querySelector('svg.graph-svg')?.dataset.scale ?? 1);
  let smallest = Infinity;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const text = walker.currentNode;
    const host = text.parentElement;
    if (!text.textContent.trim() || !host || host.closest('title, script, style, option')) continue;
    if (!host.getClientRects().length) continue;
    const size = parseFloat(getComputedStyle(host).fontSize) * (host.closest('svg') ? scale : 1);
    smallest = Math.min(smallest, size);
  }
  return smallest;
}"""


@pytest.mark.parametrize("example", ORDER)
def test_end_of_backward_fits_at_projector_and_phone_sizes(pages, server, example) -> None:
    VIEWS.mkdir(parents=True, exist_ok=True)
    for size in SIZES:
        page = pages[size]
        open_lesson(page, server, example)
        to_end(page)
        result = page.get_by_test_id("graph").evaluate(OUTSIDE)
        page.screenshot(path=str(VIEWS / f"{size}-{example}.png"))
        assert result["out"] == [], (size, result)
        assert page.evaluate(CLIPPED) == [], size
        assert page.evaluate("document.documentElement.scrollWidth <= innerWidth + 1"), size


@pytest.mark.parametrize("example", ORDER)
def test_embed_in_a_960x540_slide(pages, server, example) -> None:
    page = pages["embed"]
    page.set_content(
        f'<iframe src="{server}/embed#example={example}" width="960" height="540" '
        'style="border:0" title="slide"></iframe>'
    )
    frame = page.frame_locator("iframe")
    frame.locator("body[data-ready=true]").wait_for(timeout=30_000)
    expect(frame.locator('[data-testid="node"]').first).to_be_visible()
    to_end(frame)
    inner = page.frames[1]
    result = inner.locator('[data-testid="graph"]').evaluate(OUTSIDE)
    smallest = inner.evaluate(SMALLEST_TEXT)
    bar = inner.locator(".embed-bar").bounding_box()
    VIEWS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(VIEWS / f"960x540-embed-{example}.png"))
    assert bar["height"] < 60, "the player bar stays on one line"
    assert result["out"] == [], result
    (VIEWS / f"960x540-embed-{example}.txt").write_text(
        f"fits={result['fits']} smallest={smallest}\n"
    )
    if example != "transformer_encoder":
        assert smallest >= 14, smallest


def test_embed_says_so_when_the_server_cannot_be_reached(pages, server) -> None:
    page = pages["embed"]
    page.route("**/api/v1/**", lambda route: route.abort())
    try:
        page.goto(f"{server}/embed#example=shared_weight")
        offline = page.get_by_test_id("offline")
        expect(offline).to_be_visible()
        expect(offline).to_contain_text("cannot be reached")
        assert float(offline.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")) >= 14
    finally:
        page.unroute("**/api/v1/**")


def page_badges(page) -> dict[str, str]:
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('.node')]
          .map((n) => [n.dataset.nodeId, n.querySelector('.badge-text').dataset.text ?? ''])
          .filter(([, text]) => text))"""
    )


def svg_badges(data: bytes) -> list[str]:
    """Badge texts of the graphviz nodes of an exported SVG (the legend left out)."""
    ns = "{http://www.w3.org/2000/svg}"
    texts = []
    for group in ET.fromstring(data).iter(f"{ns}g"):
        if "node" not in (group.get("class") or "").split():  # "node", "node current", ...
            continue
        lines = ["".join(t.itertext()).strip() for t in group.iter(f"{ns}text")]
        texts += lines[2:]  # under the box's title and second line: its badge, line by line
    return sorted(t for t in texts if t)


@pytest.mark.parametrize("step", ["backward:0:2", "backward:0:3", "backward:0:4", "forward:1"])
def test_exports_at_a_step_carry_the_page_badges(pages, server, step) -> None:
    page = pages["1440x900"]
    open_lesson(page, server, "shared_weight", f"&step={step}")
    shown = page_badges(page)
    assert shown, "the page shows badges at this step"
    link = page.get_by_test_id("download-svg").get_attribute("href")
    exported = httpx.get(server + link, timeout=60)
    assert exported.status_code == 200
    lines = sorted(line for text in shown.values() for line in badge_lines(text))
    assert svg_badges(exported.content) == lines
    if step == "backward:0:3":  # step 4 of 5: both contributions met at w, under its value
        assert "= [1.]\n∂ [3.] + [2.]\n= [5.]\n→ .grad [5.]" in shown.values()


def test_html_export_shows_the_same_badges(pages, server, tmp_path) -> None:
    page = pages["1440x900"]
    open_lesson(page, server, "shared_weight", "&step=backward:0:3")
    shown = page_badges(page)
    html = httpx.get(
        server + page.get_by_test_id("download-html").get_attribute("href"), timeout=60
    )
    export = tmp_path / "export.html"
    export.write_bytes(html.content)
    page.goto(export.as_uri())
    page.wait_for_selector("body[data-ready=true]")
    assert page_badges(page) == shown


def test_inspector_prints_numbers_as_torch_does(pages, server) -> None:
    page = pages["1440x900"]
    open_lesson(page, server, "shared_weight")
    run_program(page, MICROGRAD)
    to_end(page)
    if page.locator(".graph-svg").get_attribute("data-fits") != "true":
        page.get_by_test_id("fit").click()  # the whole graph, to find a in it
    page.locator('[data-testid="node"][data-name="a"]').click()
    expect(page.get_by_test_id("dot-grad")).to_contain_text("138.8338")
    expect(page.get_by_test_id("inspector")).not_to_contain_text("std")  # one element: no stats


def test_inspector_shows_a_matrix_as_a_table_with_a_colour_key(pages, server) -> None:
    page = pages["1440x900"]
    open_lesson(page, server, "mlp_cross_entropy", "&expanded=fc2")
    page.locator('[data-testid="node"][data-name="net.fc2.weight"]').click()
    table = page.get_by_test_id("inspector").locator("table.values").first
    expect(table).to_be_visible()
    assert table.locator("tr").count() >= 2
    expect(page.get_by_test_id("colour-key").first).to_be_visible()


# Words a Chinese page may still show: code, file formats, device and language names.
ALLOWED = {"CPU", "CUDA", "SVG", "PNG", "HTML", "DOT", "None", "True", "False", "nan", "inf"}
ALLOWED |= {"Ctrl", "Enter"}  # key names, as Chinese interfaces print them
ALLOWED |= {"layers"}  # nn.TransformerEncoder's module path, named by the encoder lesson
# Identifiers of every gallery program, and the words of CamelCase ones (TransformerEncoder):
# Chinese titles name the PyTorch API they teach.
GALLERY_WORDS = {
    word
    for example in ORDER
    for name in re.findall(r"[A-Za-z_]\w*", get_lesson(example).code)
    for word in [name, *re.findall(r"[A-Z][a-z]+", name)]
}
ENGLISH_WORD = re.compile(r"[A-Za-z][A-Za-z_0-9]{2,}")
VISIBLE_TEXTS = """() => {
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const host = walker.currentNode.parentElement;
    const text = walker.currentNode.textContent.trim();
    // torch's own messages are quoted as they are, marked lang="en" (the program's output)
    if (!text || !host || host.closest('script, style, .cm-editor, #stdout, #lang, code, .values, [lang="en"]')) continue;
    if (!host.closest('title') && !host.getClientRects().length) continue;
    out.push(text);
  }
  for (const e of document.querySelectorAll('[aria-label], [title]')) {
    if (e.closest('#lang')) continue;
    for (const attr of ['aria-label', 'title']) if (e.getAttribute(attr)) out.push(e.getAttribute(attr));
  }
  return out;
}"""


def code_words(server: str, code: str) -> set[str]:
    """Identifiers of the program and of its recorded graph (names, ops, grad_fn, dtypes)."""
    graph = httpx.post(f"{server}/api/v1/trace", json={"code": code}, timeout=60).json()
    words = set(re.findall(r"[A-Za-z_]\w*", code))
    for node in graph["nodes"]:
        for key in ("name", "label", "op", "grad_fn", "dtype", "device", "module"):
            words.update(re.findall(r"[A-Za-z_]\w*", str(node.get(key) or "")))
    for text in graph.get("modules", {}).values():
        words.update(re.findall(r"[A-Za-z_]\w*", text))
    return words


def device_words(server: str) -> set[str]:
    """Words of the device list's names (a CPU model, a GPU name): proper names, not English."""
    listed = httpx.get(f"{server}/api/v1/devices", timeout=30).json()
    return {w for d in listed["devices"] for w in re.findall(r"[A-Za-z_]\w*", d["name"])}


@pytest.mark.parametrize("example", ORDER)
def test_chinese_mode_leaves_no_english(pages, server, example) -> None:
    page = pages["1440x900"]
    open_lesson(page, server, example, "&lang=zh")
    to_end(page)
    in_view = page.evaluate(
        """() => { const frame = document.querySelector('#graph').getBoundingClientRect();
          return [...document.querySelectorAll('[data-testid=node][data-kind=tensor]')]
            .filter((n) => { const r = n.getBoundingClientRect();
              return r.left >= frame.left && r.right <= frame.right
                && r.top >= frame.top && r.bottom <= frame.bottom; })
            .map((n) => n.dataset.nodeId); }"""
    )
    page.locator(f'[data-testid="node"][data-node-id="{in_view[0]}"]').click()  # one in view
    allowed = ALLOWED | code_words(server, get_lesson(example).code) | GALLERY_WORDS
    allowed |= device_words(server)  # the machine's own processor and GPU names
    allowed |= {"requires_grad", "is_leaf", "retains_grad", "grad_fn", "grad", "retain_grad"}
    allowed |= {"backward", "float32", "float64", "cpu", "AccumulateGrad"}
    english = set()
    for text in page.evaluate(VISIBLE_TEXTS):
        for word in ENGLISH_WORD.findall(text):
            if word not in allowed and not re.search(r"[A-Z].*[A-Z]|\d|_", word):
                english.add((word, text[:60]))
    assert not english, sorted(english)


def run_axe(page) -> list[str]:
    if page.url.startswith("http"):  # the served pages' CSP allows this origin's scripts only
        page.add_script_tag(url="/static/vendor/axe/axe.min.js")
    else:
        page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        """async () => {
          const result = await axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21aa'] });
          return result.violations.filter((v) => ['serious', 'critical'].includes(v.impact))
            .map((v) => `${v.id}: ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
        }"""
    )
    return found


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_axe_finds_no_serious_violation(pages, server, theme, tmp_path) -> None:
    page = pages["1440x900"]
    open_lesson(page, server, "shared_weight")
    if page.evaluate("document.documentElement.dataset.theme") != theme:
        page.get_by_test_id("theme").click()
    to_end(page)
    assert page.evaluate("document.documentElement.dataset.theme") == theme
    assert run_axe(page) == [], "/"
    page.goto(f"{server}/embed#example=shared_weight")
    page.wait_for_selector("body[data-ready=true]")
    page.evaluate(f"document.documentElement.dataset.theme = '{theme}'")
    assert run_axe(page) == [], "/embed"
    html = httpx.post(
        f"{server}/api/v1/render",
        json={"code": get_lesson("shared_weight").code, "format": "html", "theme": theme},
        timeout=60,
    )
    export = tmp_path / "export.html"
    export.write_bytes(html.content)
    page.goto(export.as_uri())
    page.wait_for_selector("body[data-ready=true]")
    assert run_axe(page) == [], "HTML export"


def test_keyboard_only_walkthrough(pages, server) -> None:
    page = pages["1440x900"]
    open_lesson(page, server, "linear_expression")
    page.get_by_test_id("editor").focus()
    before = page.evaluate("document.body.dataset.shown")
    page.keyboard.press("Control+Enter")  # run from the editor
    wait_shown(page, before)
    page.keyboard.press("Escape")
    page.keyboard.press("Tab")  # Esc then Tab leaves the editor
    assert page.evaluate("!document.activeElement.closest('.cm-editor')")
    for _ in range(80):
        if page.evaluate("document.activeElement.classList.contains('node')"):
            break
        page.keyboard.press("Tab")
    else:
        pytest.fail("Tab never reached a node of the graph")
    position = page.get_by_test_id("position").inner_text()
    page.keyboard.press("ArrowRight")  # step
    expect(page.get_by_test_id("position")).not_to_have_text(position)
    page.keyboard.press("Enter")  # select the focused node
    title = page.get_by_test_id("inspector-title")
    expect(title).to_be_visible()
    name = page.evaluate("document.activeElement.dataset.name ?? ''")
    if name:
        expect(title).to_have_text(name)
    expect(page.get_by_test_id("inspector").locator("dl.fields")).to_be_visible()


def test_gallery_lists_every_lesson_and_marks_the_current_one(pages, server) -> None:
    page = pages["1024x768"]
    open_lesson(page, server, "retain_grad")
    buttons = page.locator('[data-testid="gallery"] button')
    assert buttons.count() == len(ORDER)
    current = page.locator('[data-testid="gallery"] button[aria-current="true"]')
    expect(current).to_have_attribute("data-example", "retain_grad")
    expect(page.get_by_test_id("lesson")).to_contain_text("retain_grad()")
    # the retained tensor is marked; the one that is not retained is not
    expect(page.locator(".node.keeps-grad")).to_have_count(1)


def test_back_button_returns_to_the_previous_lesson(pages, server) -> None:
    page = pages["1440x900"]
    open_lesson(page, server, "shared_weight")
    expect(page.get_by_test_id("hint")).to_be_visible()  # "press → to take the first step"
    page.keyboard.press("ArrowRight")
    expect(page.get_by_test_id("hint")).to_be_hidden()
    before = page.evaluate("document.body.dataset.shown")
    page.click('[data-example="linear_expression"]')
    wait_shown(page, before)
    before = page.evaluate("document.body.dataset.shown")
    page.go_back()
    wait_shown(page, before)
    expect(page.locator('[data-testid="gallery"] button[aria-current="true"]')).to_have_attribute(
        "data-example", "shared_weight"
    )
    assert page.url.startswith(server)


def test_menus_never_overlap_and_downloads_are_named(pages, server) -> None:
    page = pages["1440x900"]
    open_lesson(page, server, "shared_weight", "&step=backward:0:4")
    page.locator('[data-testid="download-menu"] summary').click()
    page.locator('[data-testid="embed-menu"] summary').click()
    # the menus close each other on their (asynchronous) toggle event
    expect(page.get_by_test_id("download-menu")).not_to_have_attribute("open", re.compile(".*"))
    assert page.locator('[data-testid="embed-menu"]').evaluate("e => e.open") is True
    name = page.get_by_test_id("download-svg").get_attribute("download")
    assert name == "shared_weight-backward-0-5.svg"


def test_training_loop_shows_one_pass_at_a_time(pages, server) -> None:
    page = pages["1440x900"]
    open_lesson(page, server, "linear_regression")
    first = page.locator('[data-testid="node"]').count()
    assert page.locator('[data-testid="node"][data-name="loss"]').count() == 1
    page.get_by_test_id("pass-picker").select_option("2")
    expect(page.get_by_test_id("position")).to_contain_text("Backward step 1")
    assert page.locator('[data-testid="node"][data-name="loss"]').count() == 1
    assert page.locator('[data-testid="node"]').count() <= first + 12
    assert float(page.locator("svg.graph-svg").get_attribute("data-scale")) >= 0.5


def test_collapsed_modules_step_one_call_at_a_time(pages, server) -> None:
    page = pages["1440x900"]
    open_lesson(page, server, "transformer_encoder")
    to_end(page)
    label = page.get_by_test_id("position").inner_text()
    # 241 forward and 1343 backward autograd steps; one step per call of a visible box
    assert int(re.search(r"of (\d+)", label).group(1)) < 100, label
    page.keyboard.press("Home")
    expect(page.get_by_test_id("position")).to_contain_text("Forward step 1 of")
    total = int(re.search(r"of (\d+)", page.get_by_test_id("position").inner_text()).group(1))
    assert total < 50
    page.keyboard.press("ArrowRight")
    assert page.locator(".node.is-current").count() >= 1  # the view shows the current box


def test_chinese_mode_explains_torchs_own_messages(pages, server) -> None:
    page = pages["1440x900"]
    open_lesson(page, server, "inplace_leaf_error", "&lang=zh")
    error = page.get_by_test_id("error")
    expect(error.locator("code")).to_contain_text("leaf Variable")  # torch's words, quoted
    expect(error.locator(".explained")).to_contain_text("原地")  # and what they mean
    open_lesson(page, server, "retain_grad", "&lang=zh")
    expect(page.get_by_test_id("notes").locator(".explained")).to_contain_text(".retain_grad()")


def test_chinese_typed_through_an_input_method_lands_once(pages, server) -> None:
    page = pages["1440x900"]
    open_lesson(page, server, "linear_expression")
    page.get_by_test_id("editor").click()
    page.keyboard.press("Control+End")
    page.keyboard.type("\n# ")
    cdp = page.context.new_cdp_session(page)
    try:  # what a pinyin input method sends: a composition, then the chosen characters
        for pinyin in ("n", "ni", "nih", "niha", "nihao"):
            cdp.send(
                "Input.imeSetComposition",
                {"text": pinyin, "selectionStart": len(pinyin), "selectionEnd": len(pinyin)},
            )
        cdp.send("Input.insertText", {"text": "你好"})
    finally:
        cdp.detach()
    content = page.locator(".cm-content")
    expect(content).to_contain_text("你好")
    text = content.inner_text()
    assert text.count("你好") == 1 and "nihao" not in text, text[-80:]
    assert re.search(r"#\s?你好", text), text[-80:]  # in the comment, where the cursor was
    before = page.evaluate("document.body.dataset.shown")
    page.keyboard.press("Control+Enter")  # the program with its Chinese comment still runs
    wait_shown(page, before)
    assert page.get_by_test_id("error").is_hidden()


def test_the_lesson_sentence_leaves_with_the_lessons_code(pages, server) -> None:
    page = pages["1440x900"]
    open_lesson(page, server, "linear_expression")
    expect(page.get_by_test_id("lesson")).to_contain_text("requires_grad")
    run_program(
        page, "import torch\nw = torch.ones(2, requires_grad=True)\n(w * 3).sum().backward()\n"
    )
    expect(page.get_by_test_id("lesson-bar")).to_be_hidden()  # it spoke of x, w and b
    page.click('[data-example="linear_expression"]')
    expect(page.get_by_test_id("lesson")).to_contain_text("requires_grad")


TRAINING_THAT_FAILS = """import torch
import torch.nn as nn

model = nn.Linear(3, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
x = torch.randn(8, 3)
y = torch.randn(8, 1)
for step in range(4):
    if step == 2:
        x = torch.randn(8, 4)
    loss = ((model(x) - y) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
"""


def test_a_loop_that_fails_later_opens_at_its_failing_call(pages, server) -> None:
    page = pages["1440x900"]
    open_lesson(page, server, "linear_expression")
    run_program(page, TRAINING_THAT_FAILS)
    expect(page.get_by_test_id("pass-picker")).to_have_value("1")  # after the second pass
    ghost = page.locator(".node.failed")
    expect(ghost).to_have_class(re.compile("is-current"))
    expect(ghost.locator(".badge-text")).to_have_attribute(
        "data-text", re.compile(r"\(8x4\s+and 3x1\)")
    )
    graph = page.get_by_test_id("graph").bounding_box()
    assert graph["height"] > 400, graph  # the graph keeps its room without the lesson bar
