"""Shared fixtures: a test client and helpers to read graphs."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

# helpers' asserts are rewritten too, so the checks made inside them count (assertion_count)
pytest.register_assert_rewrite(
    "tests.browser_support", "tests.ground_truth", "tests.live_server", "tests.tutorial_reference"
)

import torch  # noqa: E402

from app.schemas import Graph, OpNode, TensorNode  # noqa: E402

pytest_plugins = ["tests.assertion_count", "pytester"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked cuda where no CUDA device is present."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


def tensor_named(graph: Graph, name: str) -> TensorNode:
    """The last tensor node carrying a variable name."""
    found = [n for n in graph.nodes if isinstance(n, TensorNode) and n.name == name]
    assert found, f"no tensor named {name!r} in {[getattr(n, 'name', None) for n in graph.nodes]}"
    return found[-1]


def node_by_id(graph: Graph, node_id: str) -> TensorNode | OpNode:
    """A node by id."""
    return next(n for n in graph.nodes if n.id == node_id)


SAFE_PROGRAM = (
    "import torch\nw = torch.tensor([1.], requires_grad=True)\nx = torch.tensor([2.], requires_grad=True)\n"
    "y = (x + w) * (w + 1)\ny.backward()\n"
)


def w_grad(graph: dict) -> list[float]:
    """.grad of the tensor named w after the first pass of a Graph as JSON."""
    (w,) = [n for n in graph["nodes"] if n.get("name") == "w"]
    return graph["backward"][0]["grads"][w["id"]]["values"]


@pytest.fixture(scope="module")
def client_with() -> Iterator[Callable[..., object]]:
    """Opens a client of the real app with these settings; all are closed after the module."""
    from fastapi.testclient import TestClient

    from app.config import Settings
    from app.main import create_app

    with ExitStack() as opened:

        def open_client(**settings: object) -> TestClient:
            return opened.enter_context(TestClient(create_app(Settings(**settings))))

        yield open_client


@pytest.fixture(scope="module")
def inprocess_client(client_with):
    """A client of the app with default settings that runs programs in this process."""
    return client_with(isolation=False)


@pytest.fixture(scope="session")
def api_client():
    """A client of the real app with its isolated worker pool (short limits for tests)."""
    from fastapi.testclient import TestClient

    from app.config import Settings
    from app.main import create_app

    # CPU time, not wall time, stops busy loops here: a loaded machine must not fail a lesson
    settings = Settings(wall_seconds=120, cpu_seconds=8, workers=2, queue_size=32, cache_entries=16)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="module")
def server():
    """Base URL of a live explorer for a module of browser tests (CPU time stops busy loops)."""
    from app.config import Settings
    from tests.live_server import live_server

    with live_server(Settings(wall_seconds=120, cpu_seconds=20, workers=2)) as (base, _):
        yield base


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium for a module of browser tests."""
    from playwright.sync_api import sync_playwright

    from tests.browser_support import launch

    with sync_playwright() as p:
        chromium = launch(p)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server, request) -> Iterator[object]:
    """A 1500×900 page of the live explorer that fails the test on any script or console error
    (HTTP statuses the test provokes on purpose go in page.expected_http_errors), and leaves a
    screenshot behind."""
    from tests.browser_support import ARTIFACTS

    context = browser.new_context(viewport={"width": 1500, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on(
        "console",
        lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None,
    )
    page.base = server
    page.expected_http_errors = set()
    yield page
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"))
    context.close()
    expected = tuple(f"status of {code} " for code in page.expected_http_errors)
    unexpected = [
        e
        for e in errors
        if not (expected and "Failed to load resource" in e and any(x in e for x in expected))
    ]
    assert unexpected == [], unexpected


@pytest.fixture
def fake_dot(tmp_path, monkeypatch):
    """Put a shell script named dot first on PATH; returns a function that writes its body."""

    def write(body: str) -> None:
        # a new file moved into place: a process forked meanwhile never holds the script open
        # for writing, which would make its exec fail with "Text file busy"
        draft = tmp_path / "dot.draft"
        draft.write_text("#!/bin/sh\n" + body + "\n")
        draft.chmod(0o755)
        os.replace(draft, tmp_path / "dot")

    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    return write
