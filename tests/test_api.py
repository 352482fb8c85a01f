"""The JSON API: status codes, fields and the contract."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.config import Settings, get_settings
from app.main import create_app


@pytest.fixture
def client() -> TestClient:
    return TestClient(create_app())


def test_health(client: TestClient) -> None:
    body = client.get("/api/v1/health").json()
    assert body["status"] == "ok" and body["torch"].startswith("2.")


def test_trace_returns_graph(client: TestClient) -> None:
    code = "import torch\nw = torch.tensor([1.], requires_grad=True)\nx = torch.tensor([2.], requires_grad=True)\ny = (x + w) * (w + 1)\ny.backward()\n"
    response = client.post("/api/v1/trace", json={"code": code})
    assert response.status_code == 200
    graph = response.json()
    (w,) = [n for n in graph["nodes"] if n.get("name") == "w"]
    assert graph["backward"][0]["grads"][w["id"]]["values"] == [5.0]


def test_user_exception_is_200_with_error(client: TestClient) -> None:
    response = client.post(
        "/api/v1/trace", json={"code": "import torch\nx = torch.ones(2)\ny = x[5]\n"}
    )
    assert response.status_code == 200
    assert response.json()["error"]["type"] == "IndexError"
    assert response.json()["error"]["line"] == 3


def test_bad_request_bodies(client: TestClient) -> None:
    assert client.post("/api/v1/trace", json={"code": "x", "device": "tpu"}).status_code == 422
    assert client.post("/api/v1/trace", json={"code": "x", "seed": -1}).status_code == 422
    assert client.post("/api/v1/trace", json={"nocode": 1}).status_code == 422


def test_graph_size_limit_is_422(client: TestClient) -> None:
    app = client.app
    app.dependency_overrides[get_settings] = lambda: Settings(max_nodes=20)
    code = (
        "import torch\nx = torch.ones(1, requires_grad=True)\nfor i in range(50):\n    x = x * 2\n"
    )
    response = client.post("/api/v1/trace", json={"code": code})
    assert response.status_code == 422
    assert response.json()["detail"] == {
        "type": "LimitExceeded",
        "limit": "nodes",
        "message": response.json()["detail"]["message"],
    }


def test_examples(client: TestClient) -> None:
    listing = client.get("/api/v1/examples").json()
    assert len(listing) >= 12 and "code" not in listing[0]
    one = client.get(f"/api/v1/examples/{listing[0]['id']}").json()
    assert one["code"].startswith("import torch")
    missing = client.get("/api/v1/examples/nope")
    assert missing.status_code == 404 and missing.json()["detail"]["type"] == "NotFound"


def test_first_page_and_static(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and 'data-testid="editor"' in page.text
    assert client.get("/static/js/api.js").status_code == 200
