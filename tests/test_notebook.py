"""Notebook use: explore() on live tensors and explore_code(), shown, exported and saved."""

from __future__ import annotations

import html
import io
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch

from app import explore, explore_code
from app.lessons import get_lesson
from app.notebook import FREED_GRAPH_NOTE, Exploration
from app.schemas import Graph
from tests.browser_support import ARTIFACTS, CHROMIUM, launch
from tests.conftest import tensor_named

pytestmark = pytest.mark.skipif(__import__("shutil").which("dot") is None, reason="needs graphviz")

# The only URLs a self-contained page may hold: XML namespaces (SVG, XLink, and MathML for the
# caption's chain rule), which are names, not loads.
NAMESPACES = {
    "http://www.w3.org/2000/svg",
    "http://www.w3.org/1999/xlink",
    "http://www.w3.org/1998/Math/MathML",
}


class ResourceLinks(HTMLParser):
    """Collects every src / href attribute and the srcdoc of iframes."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.srcdocs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if key in ("src", "href", "action", "poster", "data") and value is not None:
                self.links.append(value)
            if key == "srcdoc" and value is not None:
                self.srcdocs.append(value)


def links_of(page: str) -> ResourceLinks:
    parser = ResourceLinks()
    parser.feed(page)
    return parser


@pytest.fixture
def lesson():
    """The (x + w) * (w + 1) lesson on live tensors, with a .grad already set on w."""
    w = torch.tensor([1.0], requires_grad=True)
    x = torch.tensor([2.0], requires_grad=True)
    y = (x + w) * (w + 1)
    w.grad = torch.tensor([7.0])
    return x, w, y


def test_explore_leaves_every_grad_untouched(lesson) -> None:
    x, w, y = lesson
    grad_before = w.grad
    exploration = explore(y)
    assert w.grad is grad_before and w.grad.tolist() == [7.0]
    assert x.grad is None
    expected_w, expected_x = torch.autograd.grad(y, [w, x], retain_graph=True)
    graph = exploration.graph
    (record,) = graph.backward
    assert record.kind == "grad" and record.grads == {}  # autograd.grad: no .grad written
    assert record.results[tensor_named(graph, "w").id].values == expected_w.tolist() == [5.0]
    assert record.results[tensor_named(graph, "x").id].values == expected_x.tolist() == [2.0]


def test_explore_names_tensors_after_the_callers_variables(lesson) -> None:
    x, w, y = lesson
    names = {n.name for n in explore(y).graph.nodes if n.kind == "tensor"}
    assert {"x", "w", "y"} <= names
    named = {n.name for n in explore(y, names={"weight": w}).graph.nodes if n.kind == "tensor"}
    assert "weight" in named and "w" not in named


def test_explore_after_backward_says_the_graph_was_freed() -> None:
    w = torch.tensor([1.0], requires_grad=True)
    y = (w * 3).sum()
    y.backward()
    exploration = explore(y)
    assert exploration.graph.backward == [] and FREED_GRAPH_NOTE in exploration.graph.notes
    assert w.grad.tolist() == [3.0]
    assert len(exploration.graph.forward) >= 1


def test_explore_refuses_what_is_not_a_tensor() -> None:
    with pytest.raises(TypeError, match="one or more tensors"):
        explore([1.0, 2.0])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        explore()


def test_repr_html_holds_graph_and_player_and_no_external_url(lesson) -> None:
    x, w, y = lesson
    shown = explore(y)._repr_html_()
    outer = links_of(shown)
    # the one link outside the player is the still picture, inline
    assert [link[:26] for link in outer.links] == ["data:image/svg+xml;base64,"]
    assert len(outer.srcdocs) == 1 and 'sandbox="allow-scripts"' in shown
    page = outer.srcdocs[0]  # the parser already unescaped the attribute
    assert page == html.unescape(shown.split('srcdoc="', 1)[1].split('"', 1)[0])
    assert 'id="graph-data"' in page and 'id="player"' in page
    data = re.search(r'<script type="application/json" id="graph-data">(.*?)</script>', page, re.S)
    graph = json.loads(data.group(1))
    assert {"x", "w", "y"} <= {n.get("name") for n in graph["nodes"]}
    assert "MulBackward0" in {n.get("grad_fn") for n in graph["nodes"]}
    assert graph["layout"]["nodes"] and graph["backward"][0]["steps"]
    assert "export class Player" in page and "export class GraphView" in page
    inner = links_of(page)
    assert all(link.startswith(("data:", "#")) for link in inner.links), inner.links
    assert set(re.findall(r"https?://[^\s\\\"'<>)`]+", page)) <= NAMESPACES
    assert "@import" not in page and not re.search(r"url\(\s*['\"]?(https?:)?//", page)


def test_to_json_svg_and_save(tmp_path: Path, lesson) -> None:
    x, w, y = lesson
    exploration = explore(y)
    assert Graph.model_validate_json(exploration.to_json()) == exploration.graph
    assert exploration.to_dict()["schema_version"] == 1
    root = ET.fromstring(exploration.to_svg())
    text = " ".join(root.itertext())
    assert {"x", "w", "y"} <= set(text.split())
    # what autograd.grad returned for w (both paths summed) and x, as the page shows it
    assert "∂ [3.] + [2.] = [5.]" in text and "∂ [2.]" in text
    forward = exploration.with_view(step="forward:0").to_svg()
    assert "forward step 1/3" in forward
    written = {
        s: exploration.save(tmp_path / f"graph{s}") for s in (".html", ".svg", ".png", ".dot")
    }
    assert written[".png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert written[".dot"].read_text().startswith("digraph G {")
    assert written[".html"].read_text(encoding="utf-8") == exploration.to_html()
    saved = exploration.save(tmp_path / "graph.json")
    assert Graph.model_validate_json(saved.read_text()) == exploration.graph
    with pytest.raises(ValueError, match="suffix"):
        exploration.save(tmp_path / "graph.txt")


def test_bad_step_is_refused_at_once(lesson) -> None:
    from app.export import BadStep

    with pytest.raises(BadStep):
        explore(lesson[2]).with_view(step="forward:99")


def test_explore_code_records_the_lesson() -> None:
    exploration = explore_code(get_lesson("shared_weight").code)
    assert isinstance(exploration, Exploration)
    graph = exploration.graph
    w = tensor_named(graph, "w")
    assert graph.backward[-1].grads[w.id].values == [5.0]
    assert "Exploration:" in repr(exploration) and "1 backward passes" in repr(exploration)


@pytest.mark.skipif(
    __import__("shutil").which("rsvg-convert") is None, reason="needs librsvg's rsvg-convert"
)
def test_decks_from_a_notebook_mirror_the_command_line(tmp_path: Path, lesson) -> None:
    from PIL import Image
    from pptx import Presentation
    from pypdf import PdfReader

    code = get_lesson("shared_weight").code
    exploration = explore_code(code)
    graph = exploration.graph
    steps = len(graph.forward) + sum(len(p.steps) for p in graph.backward)
    pdf = PdfReader(io.BytesIO(exploration.to_pdf()))
    assert len(pdf.pages) == steps
    assert "backward pass 1 · step 1/5" in pdf.pages[3].extract_text()
    slides = Presentation(io.BytesIO(exploration.to_pptx(steps="4-5")))
    assert len(slides.slides) == 2  # a lesson's narration goes to the speaker notes
    told = exploration.narration["backward:0:0"].en
    assert slides.slides[0].notes_slide.notes_text_frame.text.startswith(told)
    live = explore(lesson[2]).with_view(lang="zh")  # live tensors: the same pages, no narration
    gif = live.save(tmp_path / "live.gif")
    with Image.open(gif) as frames:
        assert frames.n_frames == len(live.graph.forward) + sum(
            len(p.steps) for p in live.graph.backward
        )
    with pytest.raises(ValueError, match=".pptx"):
        exploration.save(tmp_path / "deck.key")


def test_import_app_stays_cheap() -> None:
    code = (
        "import sys, app\n"
        "assert 'torch' not in sys.modules, 'import app pulled torch'\n"
        "assert 'explore' in dir(app)\n"
        "from app import explore\n"
        "assert 'torch' in sys.modules\n"
        "try:\n    app.nothing_here\nexcept AttributeError as e:\n    print(e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "has no attribute 'nothing_here'" in done.stdout


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_repr_html_plays_in_a_browser_offline(lesson) -> None:
    from playwright.sync_api import expect, sync_playwright

    x, w, y = lesson
    cell_output = explore(y)._repr_html_()
    with sync_playwright() as p:
        browser = launch(p)
        context = browser.new_context(offline=True, viewport={"width": 1000, "height": 700})
        requests: list[str] = []
        context.on("request", lambda r: requests.append(r.url))
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.set_content(f"<!doctype html><html><body>{cell_output}</body></html>")
        frame = page.frame_locator("iframe.autograd-explorer")
        frame.locator("body[data-ready=true]").wait_for()
        expect(frame.get_by_test_id("position")).to_contain_text("Forward step 1 of 3")
        frame.get_by_test_id("to-end").click()
        badge = frame.locator('[data-testid="node"][data-name="w"] .badge-text')
        # w's value, and under it both paths summed by autograd.grad
        expect(badge.locator(".value-line")).to_have_text("= [1.]")
        expect(badge.locator(".grad-line")).to_have_text("∂ [3.] + [2.] = [5.]")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "notebook_repr_html.png"))
        browser.close()
    assert errors == []
    assert all(u.startswith(("about:", "blob:", "data:")) for u in requests), requests


NOTEBOOK_CELLS = [
    "import torch\n"
    "from app import explore\n"
    "w = torch.tensor([1.0], requires_grad=True)\n"
    "x = torch.tensor([2.0], requires_grad=True)\n"
    "y = (x + w) * (w + 1)\n"
    "w.grad = torch.tensor([7.0])",
    "exploration = explore(y)\nexploration",
    "print(w.grad.tolist(), x.grad, exploration.to_dict()['backward'][0]['kind'])",
]


@pytest.mark.slow
def test_a_jupyter_kernel_displays_the_player(tmp_path: Path) -> None:
    """A real notebook run by nbclient in an IPython kernel of this interpreter."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    # A kernelspec for this very interpreter, so no `ipykernel install` is needed beforehand.
    spec_dir = tmp_path / "kernels" / "autograd-explorer-test"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "autograd-explorer test",
                "language": "python",
            }
        )
    )
    specs = KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")])
    manager = KernelManager(kernel_name="autograd-explorer-test", kernel_spec_manager=specs)
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(source) for source in NOTEBOOK_CELLS]
    )
    root = Path(__file__).resolve().parents[1]
    client = nbclient.NotebookClient(
        notebook, km=manager, timeout=300, resources={"metadata": {"path": str(root)}}
    )
    client.execute()

    shown = notebook.cells[1].outputs
    (result,) = [o for o in shown if o.output_type == "execute_result"]
    page = result.data["text/html"]
    assert page.startswith('<div class="autograd-explorer-cell">') and "srcdoc=" in page
    player = links_of(page).srcdocs[0]
    assert 'id="player"' in player and "export class Player" in player
    assert result.data["text/plain"].startswith("<Exploration: 3 tensors")
    (printed,) = [o for o in notebook.cells[2].outputs if o.output_type == "stream"]
    assert printed.text.strip() == "[7.0] None grad"  # the live .grad untouched
