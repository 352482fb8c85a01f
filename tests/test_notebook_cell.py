"""What a notebook cell shows: its height, the picture for sanitizing renderers, and JupyterLab."""

from __future__ import annotations

import base64
import os
import queue
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from app.notebook_cell import (
    CELL_WIDTH,
    MAX_HEIGHT,
    MIN_HEIGHT,
    STILL_NOTE,
    cell_height,
    cell_html,
)
from app.schemas import Layout
from tests.browser_support import ARTIFACTS, CHROMIUM, launch

ROOT = Path(__file__).resolve().parents[1]


def layout_of(width: float, height: float) -> Layout:
    return Layout(width=width, height=height, nodes=[], edges=[])


def test_height_follows_the_graph_within_a_range() -> None:
    small, medium, tall = (cell_height(layout_of(400, h)) for h in (40, 400, 5000))
    assert small == MIN_HEIGHT and tall == MAX_HEIGHT
    assert MIN_HEIGHT < medium < MAX_HEIGHT
    assert cell_height(layout_of(400, 500)) - medium == 100  # a narrow graph: drawn at scale 1
    # twice the cell's width: drawn at about half size, so it takes about half the height
    narrow, wide = (
        cell_height(layout_of(CELL_WIDTH / 2, 600)),
        cell_height(layout_of(2 * CELL_WIDTH, 600)),
    )
    assert 280 <= narrow - wide <= 330
    assert cell_height(None) == MIN_HEIGHT


class Parts(HTMLParser):
    """The tags of the cell's HTML with their attributes, and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_cell_holds_the_player_then_the_picture_it_hides() -> None:
    svg = '<svg xmlns="http://www.w3.org/2000/svg"><text>x &amp; "w"</text></svg>'
    page = '<!doctype html><p title="a &amp; b">player</p>'
    parts = Parts()
    parts.feed(cell_html(page, svg, 432, "zh"))
    tags = [tag for tag, _ in parts.tags]
    assert tags == ["div", "style", "iframe", "div", "img", "p"]
    iframe = parts.tags[2][1]
    assert iframe["srcdoc"] == page and iframe["height"] == "432"
    assert iframe["sandbox"] == "allow-scripts"  # no allow-same-origin: it cannot reach the page
    img = parts.tags[4][1]
    prefix = "data:image/svg+xml;base64,"
    assert img["src"].startswith(prefix)
    assert base64.b64decode(img["src"][len(prefix) :]).decode("utf-8") == svg
    assert STILL_NOTE["zh"] in "".join(parts.text)
    # the rule that hides the picture needs the iframe before it
    assert ".autograd-explorer-cell > iframe ~ .autograd-explorer-still" in "".join(parts.text)


# JupyterLab in a real browser ----------------------------------------------------------------

NOTEBOOK_CODE = (
    "import torch\n"
    "from app import explore\n"
    "w = torch.tensor([1.0], requires_grad=True)\n"
    "x = torch.tensor([2.0], requires_grad=True)\n"
    "y = (x + w) * (w + 1)\n"
    "explore(y).with_view(step='forward:0')"
)


def sized_here() -> int:
    """The cell height of the notebook's graph, built in this process."""
    namespace: dict = {}
    exec(NOTEBOOK_CODE.rsplit("\n", 1)[0], namespace)  # the cell without its last line
    names = {name: namespace[name] for name in ("w", "x", "y")}  # as the cell's variables
    return namespace["explore"](namespace["y"], names=names).cell_height()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyter_lab(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A JupyterLab server on loopback with no token, in a folder holding explore.ipynb; its
    configuration, data and runtime folders are the test's own (no user settings, no trust
    database shared), and nothing is fetched from outside (no news, no update check, no PyPI)."""
    pytest.importorskip("jupyterlab")
    nbformat = pytest.importorskip("nbformat")
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(NOTEBOOK_CODE)],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    nbformat.write(notebook, notebooks / "explore.ipynb")
    home = tmp_path / "home"
    env = {
        **os.environ,
        "HOME": str(home),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "lab-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "lab-workspaces"),
        "IPYTHONDIR": str(home / "ipython"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={notebooks}",
            "--IdentityProvider.token=",
            "--ServerApp.password=",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
            "--ServerApp.terminals_enabled=False",
            # the test machines run as root; the server refuses that unless told
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    log: list[str] = []

    def read_log() -> None:
        for line in server.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read_log, daemon=True).start()
    try:
        # The server says where it listens once it does: wait for that line, not for a time.
        while True:
            line = lines.get(timeout=300)
            if line is None:
                raise RuntimeError("jupyter lab exited:\n" + "".join(log))
            log.append(line)
            if f"http://127.0.0.1:{port}/lab" in line:
                break
        yield f"http://127.0.0.1:{port}", notebooks / "explore.ipynb"
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=60)


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
@pytest.mark.skipif(__import__("shutil").which("dot") is None, reason="needs graphviz")
def test_jupyterlab_runs_the_cell_plays_it_and_shows_the_picture_untrusted(jupyter_lab) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, path = jupyter_lab
    outside: list[str] = []

    def loopback_only(route) -> None:
        url = route.request.url
        if url.startswith(base + "/") or url.startswith(("blob:", "data:")):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    # A kernel starting and graphviz laying out on a busy machine: generous waits, on events.
    expect.set_options(timeout=120_000)
    try:
        with sync_playwright() as p:
            play_in_jupyterlab(p, base, path, loopback_only)
    finally:
        expect.set_options(timeout=5_000)  # playwright's default, for the tests that follow
    assert outside == []


def play_in_jupyterlab(p, base: str, path: Path, loopback_only) -> None:
    """Run the cell, step its player, then reopen the notebook from disk untrusted."""
    from playwright.sync_api import expect

    browser = launch(p)
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.route("**/*", loopback_only)
    page = context.new_page()
    page.set_default_timeout(120_000)
    page.goto(f"{base}/lab/tree/explore.ipynb")
    editor = page.locator(".jp-Notebook .jp-CodeCell .cm-content").first
    expect(editor).to_contain_text("from app import explore")
    # A cell run before its kernel is connected is dropped: wait for the status bar to say idle.
    expect(page.get_by_role("button", name=re.compile(r"^Python 3 .*\| Idle$"))).to_be_visible()
    editor.click()
    page.keyboard.press("Shift+Enter")

    output = page.locator(".jp-OutputArea-output").first
    player = output.locator("iframe.autograd-explorer")
    expect(player).to_be_visible()
    still = output.locator(".autograd-explorer-still")
    expect(still).to_be_hidden()  # the player is there: the picture under it is not shown
    frame = page.frame_locator(".jp-OutputArea-output iframe.autograd-explorer")
    frame.locator("body[data-ready=true]").wait_for()
    position = frame.get_by_test_id("position")
    expect(position).to_have_text("Forward step 1 of 3")
    frame.get_by_test_id("fit").wait_for()  # the whole-graph control is in the bar
    # and no control of the bar lies over another at the cell's width
    speed, zoom = (frame.get_by_test_id(t).bounding_box() for t in ("speed", "zoom-in"))
    assert zoom["x"] >= speed["x"] + speed["width"] or zoom["y"] >= speed["y"] + speed["height"]
    result = frame.locator('[data-testid="node"][data-name="y"] .badge-text .value-line')
    expect(result).to_have_count(0)  # y is not computed yet
    for expected in ("Forward step 2 of 3", "Forward step 3 of 3"):
        frame.get_by_test_id("step-forward").click()
        expect(position).to_have_text(expected)
    expect(result).to_have_text("= [6.]")  # (2 + 1) * (1 + 1)
    frame.get_by_test_id("step-forward").click()  # into backward: the chain rule is told
    expect(position).not_to_have_text("Forward step 3 of 3")
    caption = frame.get_by_test_id("caption")
    expect(caption).to_be_visible()
    expect(caption).to_contain_text("∂")
    # the iframe is as tall as the graph needs, as sized by the kernel, not a fixed height
    wanted = sized_here()
    assert player.get_attribute("height") == str(wanted)
    assert abs(player.bounding_box()["height"] - wanted) <= 2  # its border
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "jupyterlab_player.png"))

    # Saved, then changed on disk as by another machine: reopened, its outputs are untrusted.
    with page.expect_response(
        lambda r: r.request.method == "PUT" and "/api/contents/explore.ipynb" in r.url
    ):
        editor.click()  # the keys go to JupyterLab again, not to the player's frame
        page.keyboard.press("Control+s")
    nbformat = pytest.importorskip("nbformat")
    saved = nbformat.read(path, as_version=4)
    assert "autograd-explorer-cell" in saved.cells[0].outputs[0]["data"]["text/html"]
    saved.cells.append(nbformat.v4.new_markdown_cell("Edited elsewhere."))
    nbformat.write(saved, path)
    page.close()

    reopened = context.new_page()
    reopened.set_default_timeout(120_000)
    reopened.goto(f"{base}/lab/tree/explore.ipynb")
    expect(reopened.locator(".jp-MarkdownCell")).to_contain_text("Edited elsewhere.")
    output = reopened.locator(".jp-OutputArea-output").first
    picture = output.locator('.autograd-explorer-still img[src^="data:image/svg+xml"]')
    expect(picture).to_be_visible()
    expect(output).to_contain_text(STILL_NOTE["en"])
    expect(output.locator("iframe")).to_have_count(0)  # the sanitizer took the player out
    assert picture.evaluate("img => img.naturalWidth") > 100  # the picture decoded
    reopened.screenshot(path=str(ARTIFACTS / "jupyterlab_untrusted.png"))
    browser.close()
