"""The JSON API: status codes, fields and the error model, through the real worker pool."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.conftest import SAFE_PROGRAM, w_grad


def test_health_reports_layers(api_client: TestClient) -> None:
    body = api_client.get("/api/v1/health").json()
    assert body["status"] == "ok" and body["torch"].startswith("2.")
    layers = body["layers"]
    assert layers["jail"] and layers["language_policy"] and layers["fresh_process"]
    assert layers["cpu_time"] and layers["wall_time"] and layers["memory"]


def test_trace_returns_graph(api_client: TestClient) -> None:
    response = api_client.post("/api/v1/trace", json={"code": SAFE_PROGRAM})
    assert response.status_code == 200
    assert w_grad(response.json()) == [5.0]


def test_identical_requests_come_from_the_cache(api_client: TestClient) -> None:
    service = api_client.app.state.service
    body = {"code": SAFE_PROGRAM + "print('cached')\n", "seed": 123}
    first = api_client.post("/api/v1/trace", json=body)
    runs = service.programs_run
    second = api_client.post("/api/v1/trace", json=body)
    assert second.content == first.content and first.json()["stdout"] == "cached\n"
    assert service.programs_run == runs  # the second answer never reached a worker
    other_seed = api_client.post("/api/v1/trace", json={**body, "seed": 124})
    assert other_seed.status_code == 200 and service.programs_run == runs + 1


def test_user_exception_is_200_with_error(api_client: TestClient) -> None:
    response = api_client.post(
        "/api/v1/trace", json={"code": "import torch\nx = torch.ones(2)\ny = x[5]\n"}
    )
    assert response.status_code == 200
    graph = response.json()
    assert graph["error"] == {
        "type": "IndexError",
        "message": graph["error"]["message"],
        "line": 3,
        "node": graph["error"]["node"],
        "pass_index": None,  # raised in the forward pass, not by a backward pass
        "roots": [],
    }
    ghost = next(n for n in graph["nodes"] if n["id"] == graph["error"]["node"])
    assert ghost["failed"] and ghost["op"] == "getitem" and ghost["line"] == 3


def test_policy_error_is_400_with_line_and_col(api_client: TestClient) -> None:
    response = api_client.post("/api/v1/trace", json={"code": "import torch\nimport subprocess\n"})
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail["type"] == "PolicyError" and detail["line"] == 2 and detail["col"] == 1
    assert "cannot start other processes" in detail["message"]


def test_file_writes_are_refused_with_what_to_do(api_client: TestClient) -> None:
    response = api_client.post(
        "/api/v1/trace", json={"code": "import torch\nx = torch.ones(2)\ntorch.save(x, 'f')\n"}
    )
    assert response.status_code == 400
    assert (
        response.json()["detail"]["line"] == 3
        and "print the values instead" in response.json()["detail"]["message"]
    )


def test_stdout_is_captured(api_client: TestClient) -> None:
    response = api_client.post(
        "/api/v1/trace", json={"code": "print('hello', 1 + 1)\nprint('a', 'b', sep='-')"}
    )
    assert response.json()["stdout"] == "hello 2\na-b\n"


def test_bad_request_bodies(api_client: TestClient) -> None:
    assert api_client.post("/api/v1/trace", json={"code": "x", "device": "tpu"}).status_code == 422
    assert api_client.post("/api/v1/trace", json={"code": "x", "seed": -1}).status_code == 422
    assert api_client.post("/api/v1/trace", json={"nocode": 1}).status_code == 422
    assert api_client.post("/api/v1/trace", json={"code": "x", "extra": 1}).status_code == 422
    assert (
        api_client.post(
            "/api/v1/trace", content=b"{not json", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )


def test_request_size_cap_is_413(api_client: TestClient) -> None:
    response = api_client.post("/api/v1/trace", json={"code": "x = 1\n" * 60_000})
    assert response.status_code == 413
    assert response.json()["detail"]["limit"] == "request_bytes"


def test_code_size_limit_is_422(api_client: TestClient) -> None:
    response = api_client.post("/api/v1/trace", json={"code": "x = 1\n" * 5000})
    assert response.status_code == 422
    assert response.json()["detail"]["limit"] == "code_bytes"


def test_cuda_request_without_cuda_is_400(api_client: TestClient) -> None:
    if api_client.get("/api/v1/health").json()["cuda"]:
        return
    response = api_client.post("/api/v1/trace", json={"code": SAFE_PROGRAM, "device": "cuda"})
    assert response.status_code == 400 and response.json()["detail"]["type"] == "DeviceUnavailable"
    auto = api_client.post("/api/v1/trace", json={"code": SAFE_PROGRAM, "device": "auto"})
    assert auto.status_code == 200 and auto.json()["device"] == "cpu"


def test_examples(api_client: TestClient) -> None:
    listing = api_client.get("/api/v1/examples").json()
    assert len(listing) >= 12 and "code" not in listing[0]
    one = api_client.get(f"/api/v1/examples/{listing[0]['id']}").json()
    assert one["code"].startswith("import torch")
    missing = api_client.get("/api/v1/examples/nope")
    assert missing.status_code == 404 and missing.json()["detail"]["type"] == "NotFound"


def test_every_example_traces_through_the_pool(api_client: TestClient) -> None:
    for summary in api_client.get("/api/v1/examples").json():
        code = api_client.get(f"/api/v1/examples/{summary['id']}").json()["code"]
        response = api_client.post("/api/v1/trace", json={"code": code})
        assert response.status_code == 200, (summary["id"], response.text[:300])
        graph = response.json()
        assert graph["nodes"] and (graph["backward"] or graph["error"])


def test_first_page_and_static(api_client: TestClient) -> None:
    page = api_client.get("/")
    assert page.status_code == 200 and 'id="editor"' in page.text
    assert 'data-testid="run"' in page.text and "/static/js/app.js" in page.text
    for module in (
        "api",
        "app",
        "graph-view",
        "player",
        "inspector",
        "editor",
        "i18n",
        "state",
        "timeline",
    ):
        response = api_client.get(f"/static/js/{module}.js")
        assert response.status_code == 200 and "javascript" in response.headers["content-type"]
    embed = api_client.get("/embed")
    assert embed.status_code == 200 and "/static/js/embed.js" in embed.text


def test_in_process_mode_and_graph_size_limit() -> None:
    settings = Settings(isolation=False, max_nodes=20)
    with TestClient(create_app(settings)) as client:
        assert client.get("/api/v1/health").json()["layers"]["fresh_process"] is False
        code = "import torch\nx = torch.ones(1, requires_grad=True)\nfor i in range(50):\n    x = x * 2\n"
        response = client.post("/api/v1/trace", json={"code": code})
        assert response.status_code == 200  # the partial graph, with a note
        graph = response.json()
        assert len(graph["nodes"]) == 20 and graph["error"] is None
        assert [m["key"] for m in graph["messages"]] == ["nodeLimit"]


def test_rate_limit_per_client() -> None:
    settings = Settings(isolation=False, rate_limit_per_minute=3, rate_limit_localhost=True)
    with TestClient(create_app(settings)) as client:
        codes = [
            client.post("/api/v1/trace", json={"code": "x = 1", "seed": i}).status_code
            for i in range(5)
        ]
        assert codes == [200, 200, 200, 429, 429]
        limited = client.post("/api/v1/trace", json={"code": "x = 1", "seed": 9})
        assert int(limited.headers["retry-after"]) >= 1


def test_trace_comes_laid_out(api_client: TestClient) -> None:
    graph = api_client.post("/api/v1/trace", json={"code": SAFE_PROGRAM, "seed": 3}).json()
    layout = graph["layout"]
    assert layout["nodes"] and layout["width"] > 0
    assert set(layout["node_of"]) == {n["id"] for n in graph["nodes"]}
    assert api_client.get("/api/v1/health").json()["layout"] is True


def test_layout_endpoint_expands_a_module(api_client: TestClient) -> None:
    code = api_client.get("/api/v1/examples/mlp_cross_entropy").json()["code"]
    first = api_client.post("/api/v1/trace", json={"code": code}).json()["layout"]
    assert "group:fc1" in {n["id"] for n in first["nodes"]}
    response = api_client.post("/api/v1/layout", json={"code": code, "expanded": ["fc1"]})
    assert response.status_code == 200
    expanded = response.json()
    assert expanded["expanded"] == ["fc1"] and [c["label"] for c in expanded["clusters"]] == ["fc1"]
    assert "group:fc1" not in {n["id"] for n in expanded["nodes"]}
    again = api_client.post("/api/v1/layout", json={"code": code, "expanded": ["fc1"]})
    assert again.content == response.content


def test_layout_of_refused_program_is_400(api_client: TestClient) -> None:
    response = api_client.post("/api/v1/layout", json={"code": "import subprocess", "expanded": []})
    assert response.status_code == 400 and response.json()["detail"]["type"] == "PolicyError"


def test_without_dot_the_server_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with TestClient(create_app(Settings(isolation=False))) as client:
        health = client.get("/api/v1/health").json()
        assert health["layout"] is False and "apt-get install graphviz" in health["notes"][0]
        graph = client.post("/api/v1/trace", json={"code": SAFE_PROGRAM}).json()
        assert graph["layout"] is None and any("graphviz" in n for n in graph["notes"])
        assert w_grad(graph) == [5.0]
        layout = client.post("/api/v1/layout", json={"code": SAFE_PROGRAM})
        assert layout.status_code == 503 and layout.json()["detail"]["type"] == "LayoutUnavailable"
        assert client.get("/").status_code == 200


def post_raw(client: TestClient, path: str, body: dict):
    """POST JSON as escaped ASCII, so lone surrogates travel as \\ud800 escapes."""
    content = json.dumps(body, ensure_ascii=True).encode()
    return client.post(path, content=content, headers={"content-type": "application/json"})


@pytest.mark.parametrize("path", ["/api/v1/trace", "/api/v1/layout", "/api/v1/render"])
def test_lone_surrogates_are_400_before_any_work(api_client: TestClient, path: str) -> None:
    runs = api_client.app.state.service.programs_run
    response = post_raw(api_client, path, {"code": "x = '\ud800'\n"})
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail["type"] == "BadRequest" and "surrogate" in detail["message"]
    if path != "/api/v1/trace":
        named = post_raw(api_client, path, {"code": SAFE_PROGRAM, "expanded": ["a\udfffb"]})
        assert named.status_code == 400 and "expanded" in named.json()["detail"]["message"]
    assert api_client.app.state.service.programs_run == runs


def test_surrogates_made_by_the_program_are_replaced(api_client: TestClient) -> None:
    response = api_client.post("/api/v1/trace", json={"code": "print('\\ud800!')\n"})
    assert response.status_code == 200 and response.json()["stdout"] == "\ufffd!\n"


def test_no_redirect_points_at_the_client_supplied_host(api_client: TestClient) -> None:
    for path in ("/api/v1/health/", "/api/v1/examples/", "/embed/"):
        response = api_client.get(path, headers={"Host": "evil.example"}, follow_redirects=False)
        assert response.status_code == 404, path
        assert "location" not in response.headers


@pytest.mark.skipif(__import__("shutil").which("dot") is None, reason="needs graphviz")
def test_any_module_name_lays_out_and_renders_through_the_api(api_client: TestClient) -> None:
    from tests.test_layout import ODD_KEY

    code = (
        "import torch\nimport torch.nn as nn\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        f"        self.blocks = nn.ModuleDict({{{ODD_KEY!r}: nn.Linear(2, 2)}})\n"
        "    def forward(self, x):\n"
        f"        return self.blocks[{ODD_KEY!r}](x)\n"
        "y = Net()(torch.ones(1, 2)).sum()\ny.backward()\n"
    )
    inner = f"blocks.{ODD_KEY}"
    traced = api_client.post("/api/v1/trace", json={"code": code})
    assert traced.status_code == 200 and traced.json()["layout"]["collapsible"] == [
        "blocks",
        inner,
    ]
    for expanded in (["blocks"], ["blocks", inner]):
        layout = api_client.post("/api/v1/layout", json={"code": code, "expanded": expanded})
        assert layout.status_code == 200, layout.text
        assert sorted(layout.json()["expanded"]) == sorted(expanded)
        for fmt in ("svg", "png", "dot", "html"):
            body = {"code": code, "format": fmt, "expanded": expanded}
            assert api_client.post("/api/v1/render", json=body).status_code == 200, fmt


@pytest.mark.skipif(__import__("shutil").which("dot") is None, reason="needs graphviz")
def test_layout_is_503_while_every_dot_slot_stays_busy() -> None:
    from app.dot_run import DOT_SLOTS

    settings = Settings(isolation=False, layout_seconds=0.2)
    with TestClient(create_app(settings)) as client:
        taken = 0
        while DOT_SLOTS.acquire(blocking=False):
            taken += 1
        try:
            response = client.post("/api/v1/layout", json={"code": SAFE_PROGRAM, "expanded": ["x"]})
        finally:
            for _ in range(taken):
                DOT_SLOTS.release()
        assert response.status_code == 503 and response.headers["Retry-After"] == "2"
        assert response.json()["detail"]["type"] == "Busy"
        traced = client.post("/api/v1/trace", json={"code": SAFE_PROGRAM})
        assert traced.status_code == 200 and traced.json()["layout"] is not None


def test_devices_lists_the_cpu_first(api_client: TestClient) -> None:
    response = api_client.get("/api/v1/devices")
    assert response.status_code == 200
    body = response.json()
    cpu = body["devices"][0]
    assert cpu["id"] == "cpu" and cpu["kind"] == "cpu" and cpu["total_memory_bytes"] > 2**28
    cuda = [d for d in body["devices"] if d["kind"] == "cuda"]
    assert body["cuda"] is bool(cuda) is api_client.get("/api/v1/health").json()["cuda"]
    assert [d["id"] for d in cuda] == [f"cuda:{i}" for i in range(len(cuda))]


@pytest.mark.cuda
def test_devices_name_each_gpu_without_initialising_cuda_here(api_client: TestClient) -> None:
    body = api_client.get("/api/v1/devices").json()
    gpus = [d for d in body["devices"] if d["kind"] == "cuda"]
    assert body["cuda"] and gpus
    assert all(g["name"] and g["total_memory_bytes"] > 2**30 for g in gpus)
    assert len(gpus) == torch.cuda.device_count()
    # the server must never start CUDA itself, or the workers it forks could not use it
    probe = (
        "import app, torch\nfrom app.devices import list_devices\n"
        "assert torch.cuda.is_available() and len(list_devices()) > 1\n"
        "print(torch.cuda.is_initialized())"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.cuda
def test_cuda_trace_through_the_sandbox_matches_cpu(api_client: TestClient) -> None:
    cpu = api_client.post("/api/v1/trace", json={"code": SAFE_PROGRAM, "device": "cpu"}).json()
    for device in ("cuda", "auto"):
        response = api_client.post("/api/v1/trace", json={"code": SAFE_PROGRAM, "device": device})
        assert response.status_code == 200, response.text
        graph = response.json()
        assert graph["device"] == "cuda:0" and graph["error"] is None
        tensors = [n for n in graph["nodes"] if n["kind"] == "tensor"]
        assert tensors and all(n["device"] == "cuda:0" for n in tensors)
        assert w_grad(graph) == w_grad(cpu) == [5.0]


def test_trace_carries_rules_and_examples_carry_narration(api_client: TestClient) -> None:
    example = api_client.get("/api/v1/examples/shared_weight").json()
    assert "2 + 3 = 5" in example["captions"]["backward:0:3"]["en"]
    assert "2 + 3 = 5" in example["captions"]["backward:0:3"]["zh"]
    assert "captions" not in api_client.get("/api/v1/examples").json()[0]
    graph = api_client.post("/api/v1/trace", json={"code": example["code"]}).json()
    steps = graph["backward"][0]["steps"]
    (w,) = [n for n in graph["nodes"] if n.get("name") == "w"]
    (acc,) = [
        s for s in steps if s["rule"]["accumulate"] and s["rule"]["accumulate"]["leaf"] == w["id"]
    ]
    assert acc["rule"]["meet"]["text"] in ("2 + 3 = 5", "3 + 2 = 5")
    assert steps[0]["rule"]["expression"] == "y = a * b"


def test_a_layout_is_made_for_the_frame_it_is_asked_for(api_client: TestClient) -> None:
    code = "import torch\nx = torch.tensor([0.5], requires_grad=True)\ny = x\n" + "".join(
        f"y = torch.sin(y) * {i + 2}\n" for i in range(8)
    )
    wide = api_client.post("/api/v1/layout", json={"code": code, "aspect": 2.0}).json()
    upright = api_client.post("/api/v1/layout", json={"code": code, "aspect": 0.5}).json()
    assert wide["width"] / wide["height"] > 1.0 > upright["width"] / upright["height"]
    assert {n["id"] for n in wide["nodes"]} == {n["id"] for n in upright["nodes"]}
    for aspect in (0, 100, "NaN", "Infinity"):
        bad = api_client.post("/api/v1/layout", json={"code": code, "aspect": aspect})
        assert bad.status_code == 422, aspect
    assert api_client.get("/api/v1/health").status_code == 200


@pytest.mark.skipif(__import__("shutil").which("dot") is None, reason="needs graphviz")
def test_a_structure_only_trace_lays_out_and_renders(api_client: TestClient) -> None:
    body = {"code": SAFE_PROGRAM, "values": False}
    traced = api_client.post("/api/v1/trace", json=body)
    assert traced.status_code == 200, traced.text
    graph = traced.json()
    tensors = [n for n in graph["nodes"] if n["kind"] == "tensor"]
    assert tensors and all(n["value"]["values"] is None for n in tensors)
    assert all(
        n["value"]["stats"] is None and n["grad"]["stats"] is None for n in tensors if n["grad"]
    )
    assert graph["backward"] and graph["backward"][0]["steps"] and not graph["series"]
    with_values = api_client.post("/api/v1/trace", json={"code": SAFE_PROGRAM}).json()
    assert [s["node"] for s in graph["backward"][0]["steps"]] == [
        s["node"] for s in with_values["backward"][0]["steps"]
    ]
    # values are part of the cache key: the same program with values is its own answer
    assert all(
        n["value"]["values"] is not None for n in with_values["nodes"] if n["kind"] == "tensor"
    )
    assert api_client.post("/api/v1/layout", json=body).status_code == 200
    for fmt in ("svg", "html"):
        response = api_client.post("/api/v1/render", json={**body, "format": fmt})
        assert response.status_code == 200, response.text


def test_layout_endpoint_expands_all_or_to_a_depth(api_client: TestClient) -> None:
    from tests.test_repeat_fold import LSTM_LINE, LSTM_PROGRAM, LSTM_STEPS

    fold = f"fold:line:{LSTM_LINE}"
    first = api_client.post("/api/v1/trace", json={"code": LSTM_PROGRAM}).json()["layout"]
    assert [n["label"] for n in first["nodes"] if n["kind"] == "fold"] == [
        f"line {LSTM_LINE} × {LSTM_STEPS}"
    ]
    one = api_client.post("/api/v1/layout", json={"code": LSTM_PROGRAM, "depth": 1})
    assert one.status_code == 200
    assert fold in one.json()["expanded"] and "depth:1" not in one.json()["expanded"]
    every = api_client.post("/api/v1/layout", json={"code": LSTM_PROGRAM, "expanded": ["*"]})
    assert every.status_code == 200
    assert f"line:{LSTM_LINE}#{LSTM_STEPS}" in every.json()["expanded"]
    assert every.json()["messages"] == []
    for bad in ({"depth": -1}, {"depth": 65}, {"depth": "all"}, {"expanded": ["depth:2"]},
                {"expanded": ["layers.*"]}):  # fmt: skip
        response = api_client.post("/api/v1/layout", json={"code": LSTM_PROGRAM, **bad})
        assert response.status_code == 422, bad
