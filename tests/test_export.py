"""Exports: SVG parses and names every variable, PNG is a PNG, DOT is graphviz, HTML plays offline."""

from __future__ import annotations

import base64
import json
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.cli import main
from app.export import BadStep, picture_state, render, script_json, styled_view
from app.layout import layout_graph
from app.lessons import get_lesson
from app.schemas import TensorNode
from app.tracing import trace_code
from tests.browser_support import ARTIFACTS, CHROMIUM, launch
from tests.test_layout import ODD_KEY, odd_module_graph

pytestmark = pytest.mark.skipif(__import__("shutil").which("dot") is None, reason="needs graphviz")


@pytest.fixture(scope="module")
def mlp():
    return trace_code(get_lesson("mlp_cross_entropy").code)


@pytest.fixture(scope="module")
def shared():
    return trace_code(get_lesson("shared_weight").code)


def svg_text(data: bytes) -> str:
    root = ET.fromstring(data)
    return " ".join(t for t in root.itertext())


@pytest.mark.parametrize(
    "example", ["linear_expression", "shared_weight", "custom_function", "two_layer_relu"]
)
def test_svg_parses_and_names_every_variable(example: str) -> None:
    graph = trace_code(get_lesson(example).code)
    data = render(graph, "svg")
    text = svg_text(data)
    names = {n.name for n in graph.nodes if isinstance(n, TensorNode) and n.name}
    assert names and all(name in text for name in names), names
    assert "leaf, requires grad" in text  # the legend
    root = ET.fromstring(data)
    sizes = [float(e.get("font-size")) for e in root.iter() if e.get("font-size")]
    assert min(sizes) >= 12


def test_svg_at_a_step_shows_its_values(shared) -> None:
    text = svg_text(render(shared, "svg", step="backward:0:4"))
    # broken into lines as the page breaks a long badge (app/badges.py badge_lines)
    assert all(part in text for part in ("∂ [3.] + [2.]", "= [5.]", "→ .grad [5.]"))
    assert "step 5/5" in text
    forward = svg_text(render(shared, "svg", step="forward:0"))
    assert "= [3.]" in forward and "forward step 1/3" in forward


def test_the_call_that_raised_is_exported_as_the_page_shows_it() -> None:
    code = (
        "import torch\nx = torch.randn(3, 4, requires_grad=True)\n"
        "w = torch.randn(5, 2, requires_grad=True)\nh = x * 2\ny = h @ w\n"
    )
    graph = trace_code(code)
    dot = render(graph, "dot", step="forward:1").decode()
    ghost = next(line for line in dot.splitlines() if "matmul" in line)
    assert "dashed" in ghost and "✗ RuntimeError" in ghost
    text = svg_text(render(graph, "svg", step="forward:1"))
    assert "✗ RuntimeError" in text and "(3x4" in text and "forward step 2/2" in text


def test_png_without_librsvg_is_graphvizs_own(shared, monkeypatch) -> None:
    import app.export

    monkeypatch.setattr(app.export, "rsvg_available", lambda: False)
    data = render(shared, "png", step="backward:0:0")
    assert data[:8] == b"\x89PNG\r\n\x1a\n"


def test_png_signature_and_size(shared) -> None:
    data = render(shared, "png", theme="dark", lang="zh")
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert 400 <= width <= 6000 and 400 <= height <= 6000


def test_dot_source_collapses_modules(mlp) -> None:
    source = render(mlp, "dot").decode()
    assert source.startswith("digraph G {") and '"group:fc1"' in source
    expanded = render(mlp, "dot", expanded=["fc1"]).decode()
    assert '"group:fc1"' not in expanded and "cluster_" in expanded


def test_bad_steps_are_refused(shared) -> None:
    for step in ("forward:99", "backward:3:0", "sideways:1", "backward:0:99"):
        with pytest.raises(BadStep):
            picture_state(shared, step)


def test_labels_are_escaped(shared) -> None:
    graph = shared.model_copy(deep=True)  # the module's graph stays as recorded
    graph.nodes[0].label = "<b>&evil"
    source = styled_view(graph, [], None, "light", "en").source
    assert "&lt;b&gt;&amp;evil" in source


def test_cli_render_writes_files(tmp_path: Path, capsys) -> None:
    program = tmp_path / "p.py"
    program.write_text(get_lesson("shared_weight").code)
    for fmt in ("svg", "png", "dot", "html"):
        out = tmp_path / f"g.{fmt}"
        assert (
            main(
                ["render", str(program), "--format", fmt, "-o", str(out), "--step", "backward:0:1"]
            )
            == 0
        )
        assert out.stat().st_size > 500
    assert main(["render", str(program), "--step", "nope", "-o", str(tmp_path / "x.svg")]) == 2


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_html_export_plays_a_backward_step_offline(tmp_path: Path, shared) -> None:
    from playwright.sync_api import expect, sync_playwright

    page_file = tmp_path / "graph.html"
    page_file.write_bytes(render(shared, "html", step="forward:2"))
    assert b"http://" not in page_file.read_bytes().replace(b"http://www.w3.org", b"")
    with sync_playwright() as p:
        browser = launch(p)
        context = browser.new_context(offline=True)
        requests: list[str] = []
        context.on("request", lambda r: requests.append(r.url))
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(page_file.as_uri())
        page.wait_for_selector("body[data-ready=true]")
        expect(page.get_by_test_id("position")).to_contain_text("Forward step 3 of 3")
        page.get_by_test_id("step-forward").click()
        expect(page.get_by_test_id("position")).to_contain_text("Backward step 1 of 5")
        page.get_by_test_id("to-end").click()
        badge = page.locator('[data-testid="node"][data-name="w"] .badge-text')
        expect(badge).to_contain_text("= [5.]")
        # the caption under the graph says the step's chain rule, as the page's does
        rule = shared.backward[0].steps[-1].rule
        expect(page.get_by_test_id("caption")).to_be_visible()
        expect(page.get_by_test_id("rule-accumulate")).to_have_text(rule.accumulate.text)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "html_export.png"))
        browser.close()
    assert errors == []
    assert all(u.startswith(("file:", "blob:", "data:")) for u in requests), requests


def test_render_api(api_client) -> None:
    code = get_lesson("shared_weight").code
    encoded = base64.urlsafe_b64encode(code.encode()).decode().rstrip("=")
    svg = api_client.get(f"/api/v1/render?code={encoded}&format=svg&step=backward:0:4")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert 'filename="autograd-graph-backward-0-5.svg"' in svg.headers["content-disposition"]
    ET.fromstring(svg.content)
    png = api_client.post("/api/v1/render", json={"code": code, "format": "png", "theme": "dark"})
    assert (
        png.status_code == 200
        and png.content[:4] == b"\x89PNG"
        and png.headers["content-type"] == "image/png"
    )
    html = api_client.post("/api/v1/render", json={"code": code, "format": "html"})
    assert html.headers["content-type"].startswith("text/html") and b"graph-data" in html.content
    dot = api_client.post("/api/v1/render", json={"code": code, "format": "dot"})
    assert dot.headers["content-type"].startswith("text/vnd.graphviz") and dot.text.startswith(
        "digraph"
    )
    bad = api_client.post(
        "/api/v1/render", json={"code": code, "format": "svg", "step": "backward:7:0"}
    )
    assert bad.status_code == 400 and bad.json()["detail"]["type"] == "BadStep"
    assert api_client.get("/api/v1/render?code=***&format=svg").status_code == 400
    refused = api_client.post("/api/v1/render", json={"code": "import subprocess", "format": "svg"})
    assert refused.status_code == 400 and refused.json()["detail"]["type"] == "PolicyError"


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.text(), lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner)))
def test_script_json_is_inert_in_a_script_element_for_any_string(value) -> None:
    text = script_json(value)
    assert json.loads(text) == value
    assert not any(ch in text for ch in "<>&\u2028\u2029")


def test_any_module_name_exports_in_every_format_and_view() -> None:
    graph = odd_module_graph()
    inner = f"blocks.{ODD_KEY}"
    for expanded in ([], ["blocks"], ["blocks", inner]):
        ET.fromstring(render(graph, "svg", expanded))
        assert render(graph, "png", expanded)[:4] == b"\x89PNG"
        assert render(graph, "dot", expanded).startswith(b"digraph G {")
        page = render(graph, "html", expanded).decode()
        embedded = page.split('id="graph-data">', 1)[1].split("</script>", 1)[0]
        data = json.loads(embedded)
        assert {n.get("module") for n in data["nodes"]} >= {inner}
        assert sorted(data["layout"]["expanded"]) == sorted(expanded)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_html_export_with_markup_in_names_shows_its_graph(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    page_file = tmp_path / "odd.html"
    graph = odd_module_graph()
    boxes = len(layout_graph(graph, ["blocks"]).nodes)
    page_file.write_bytes(render(graph, "html", ["blocks"]))
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_context(offline=True).new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(page_file.as_uri())
        page.wait_for_selector("body[data-ready=true]")
        expect(page.get_by_test_id("node").first).to_be_visible()
        assert page.get_by_test_id("node").count() == boxes
        expect(page.locator("svg")).to_contain_text("<!--")
        browser.close()
    assert errors == []


def test_an_export_writes_the_badge_track_once(shared, monkeypatch) -> None:
    import app.badges
    import app.export
    import app.layout_boxes

    calls: list[int] = []

    def counted(graph):
        calls.append(1)
        return app.badges.badge_track(graph)

    monkeypatch.setattr(app.export, "badge_track", counted)
    monkeypatch.setattr(app.layout_boxes, "badge_track", counted)
    plain = shared.model_copy(update={"badges": None})
    source = render(plain, "dot")
    assert len(calls) == 1
    assert source == render(
        plain.model_copy(update={"badges": app.badges.badge_track(plain)}), "dot"
    )


def _css_colours(theme: str) -> dict[str, str]:
    """The page's colour variables of a theme, read from static/css/explorer.css."""
    css = (Path(__file__).parent.parent / "static" / "css" / "explorer.css").read_text()
    import re

    blocks = re.findall(r"(:root|\[data-theme=\"dark\"\])\s*\{([^}]*)\}", css)
    colours: dict[str, str] = {}
    for selector, body in blocks:
        if theme == "light" and selector != ":root":
            continue
        colours.update(dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{6})", body)))
    return colours


def _luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    low, high = sorted((_luminance(a), _luminance(b)))
    return (high + 0.05) / (low + 0.05)


def test_stills_carry_the_steps_caption(shared) -> None:
    from app.page_render import rasterize
    from app.step_caption import narration_for

    step = shared.backward[0].steps[0]  # y = a * b: the product rule
    text = " ".join(svg_text(render(shared, "svg", step="backward:0:0")).split())
    assert step.rule.expression in text
    for term in step.rule.terms:
        assert f"grad_{term.name} = {term.product} = {term.numbers}" in text
    narration = narration_for(get_lesson("shared_weight").code)
    told = " ".join(svg_text(render(shared, "svg", step="forward:1", narration=narration)).split())
    assert " ".join(narration["forward:1"].en.split())[:50] in told
    dot = render(shared, "dot", step="backward:0:0").decode()
    assert step.rule.expression in dot
    svg = render(shared, "svg", step="backward:0:0")  # the PNG is that SVG drawn
    assert render(shared, "png", step="backward:0:0") == rasterize(svg)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_ops_are_drawn_as_the_pages_pills_in_its_colours(shared, theme: str) -> None:
    colours = _css_colours(theme)
    root = ET.fromstring(render(shared, "svg", step="forward:2", theme=theme))
    ns = "{http://www.w3.org/2000/svg}"
    ops = {o.id: o for o in shared.nodes if o.kind == "op"}
    seen = 0
    for group in root.iter(f"{ns}g"):
        if "node" not in (group.get("class") or "").split():
            continue
        name = group.find(f"{ns}title").text
        if name not in ops:
            continue
        shape = group.find(f"{ns}rect")
        assert shape is not None, name  # a pill, not a box
        assert float(shape.get("rx")) == pytest.approx(float(shape.get("height")) / 2)
        if "current" not in group.get("class"):
            assert shape.get("stroke").lower() == colours["op"].lower(), name
        assert shape.get("fill").lower().startswith(colours["op-bg"].lower())
        seen += 1
    assert seen == len(ops)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_legend_swatch_stands_out_from_the_background(shared, theme: str) -> None:
    from app.export import THEMES

    root = ET.fromstring(render(shared, "svg", theme=theme))
    ns = "{http://www.w3.org/2000/svg}"
    swatches = [  # the legend's outlined cells
        p.get("stroke")
        for p in root.iter(f"{ns}polygon")
        if p.get("fill") == "none" and p.get("stroke-width") == "2"
    ]
    assert len(swatches) == 7
    background = THEMES[theme]["bg"]
    for colour in swatches:  # WCAG 1.4.11: graphics need 3:1 against what is around them
        assert _contrast(colour, background) >= 3, colour


def test_downloads_are_named_after_the_lesson_and_step(api_client) -> None:
    code = get_lesson("shared_weight").code
    encoded = base64.urlsafe_b64encode(code.encode()).decode().rstrip("=")
    for fmt, step, name in (
        ("svg", "backward:0:2", "shared_weight-backward-0-3.svg"),
        ("png", "forward:0", "shared_weight-forward-1.png"),
        ("html", None, "shared_weight.html"),
    ):
        query = f"code={encoded}&format={fmt}&name=shared_weight" + (
            f"&step={step}" if step else ""
        )
        answer = api_client.get(f"/api/v1/render?{query}")
        assert answer.status_code == 200
        assert f'filename="{name}"' in answer.headers["content-disposition"]
    bad = api_client.get(f"/api/v1/render?code={encoded}&format=svg&name=a%22b")
    assert bad.status_code == 400
