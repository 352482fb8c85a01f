"""A graph that is heavy for graphviz is traced, laid out and exported while health keeps answering."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.live_server import served_process

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(__import__("shutil").which("dot") is None, reason="needs graphviz"),
]

# torch.cat of 200 leaves and the running value, 60 times: 12k edges among 640 nodes. Flat,
# it needs graphviz for more than a gigabyte; grouped by its source line it is small.
DENSE_PROGRAM = (
    "import torch\n"
    "leaves = [torch.ones(1, requires_grad=True) for i in range(200)]\n"
    "g = torch.ones(1, requires_grad=True)\n"
    "for i in range(60):\n"
    "    g = torch.cat(leaves + [g]).sum(0, keepdim=True)\n"
    "g.backward()\n"
)
PROBE_EVERY_S = 0.2


class HealthProbe:
    """Asks for health every 200 ms in a thread; an error or no answer in 10 s is a failure."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.answers = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                try:
                    status = client.get(f"{self.base}/api/v1/health").status_code
                    if status != 200:
                        self.failures.append(str(status))
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                self.answers += 1
                self._stop.wait(PROBE_EVERY_S)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_dense_graph_is_laid_out_and_rendered_while_health_keeps_answering() -> None:
    settings = {
        "wall_seconds": 60,
        "cpu_seconds": 60,
        "layout_max_edges": 100_000,  # let the flat view reach graphviz, to be bounded there
        "layout_max_cost": 10**9,
        "layout_seconds": 5,
        "layout_memory_mb": 512,
    }
    with served_process(settings) as base, HealthProbe(base) as probe:
        client = httpx.Client(base_url=base, timeout=120)
        traced = client.post("/api/v1/trace", json={"code": DENSE_PROGRAM})
        assert traced.status_code == 200, traced.text[:300]
        graph = traced.json()
        assert len(graph["edges"]) > 12_000 and graph["error"] is None
        # the loop's line folds: one box '× 60' opens into its iterations
        assert "fold:line:5" in graph["layout"]["collapsible"]
        for fmt, magic in (("svg", b"<?xml"), ("png", b"\x89PNG")):
            export = client.post("/api/v1/render", json={"code": DENSE_PROGRAM, "format": fmt})
            assert export.status_code == 200 and export.content.startswith(magic)
        flat = [
            ("/api/v1/layout", {}),
            ("/api/v1/render", {"format": "svg"}),
            ("/api/v1/render", {"format": "png"}),
        ]

        def post(item: tuple[str, dict]) -> httpx.Response:
            path, extra = item
            body = {"code": DENSE_PROGRAM, "expanded": ["*"], **extra}
            return client.post(path, json=body)

        with ThreadPoolExecutor(len(flat)) as pool:
            answers = list(pool.map(post, flat))
        # graphviz (or the PNG's drawing) finished, hit its bound, or every slot stayed busy
        bounds = ("layout_time", "layout_memory", "render_time", "render_memory")
        for answer in answers:
            if answer.status_code == 422:
                assert answer.json()["detail"]["limit"] in bounds
            elif answer.status_code == 503:
                assert answer.headers["Retry-After"]
            else:
                assert answer.status_code == 200, answer.text[:300]
        client.close()
    assert probe.failures == [] and probe.answers >= 3
