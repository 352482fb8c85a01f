"""Cross-site requests to endpoints that run work are refused with 403 CrossSite."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

from app.site_guard import cross_site_reason

CODE = base64.urlsafe_b64encode(b"import torch\nx = torch.ones(1, requires_grad=True)\n")
RENDER = f"/api/v1/render?code={CODE.decode().rstrip('=')}&format=dot"
IMAGE_TAG = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}
LINK_FOLLOWED = {
    "Sec-Fetch-Site": "cross-site",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-User": "?1",
}


@pytest.fixture(scope="module")
def client(client_with) -> TestClient:
    return client_with(isolation=False, cors_origins=["https://course.example.edu"])


@pytest.mark.parametrize(
    "headers",
    [
        IMAGE_TAG,
        {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Dest": "image"},
        {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://testserver.evil.example"},
    ],
)
def test_another_sites_page_cannot_make_the_server_render(
    client: TestClient, headers: dict[str, str]
) -> None:
    answer = client.get(RENDER, headers=headers)
    assert answer.status_code == 403
    assert answer.json()["detail"]["type"] == "CrossSite"
    assert "AE_CORS_ORIGINS" in answer.json()["detail"]["message"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/trace", {"code": "x = 1\n"}),
        ("POST", "/api/v1/layout", {"code": "x = 1\n"}),
        ("POST", "/api/v1/render", {"code": "x = 1\n", "format": "dot"}),
    ],
)
def test_every_endpoint_that_runs_work_refuses_a_foreign_origin(
    client: TestClient, method: str, path: str, body: dict
) -> None:
    answer = client.request(method, path, json=body, headers={"Origin": "https://evil.example"})
    assert answer.status_code == 403 and answer.json()["detail"]["type"] == "CrossSite"


def test_our_own_pages_links_and_plain_clients_are_served(client: TestClient) -> None:
    for headers in (
        {},  # curl, scripts
        {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Dest": "document"},
        {"Sec-Fetch-Site": "none"},  # typed into the address bar
        {"Origin": "http://testserver"},
        LINK_FOLLOWED,  # a person follows a shared link
    ):
        assert client.get(RENDER, headers=headers).status_code != 403, headers


def test_a_cors_origin_may_call_the_api(client: TestClient) -> None:
    headers = {"Origin": "https://course.example.edu", "Sec-Fetch-Site": "cross-site"}
    answer = client.post("/api/v1/trace", json={"code": "x = 1\n"}, headers=headers)
    assert answer.status_code == 200


def test_read_only_endpoints_answer_any_site(client: TestClient) -> None:
    assert client.get("/api/v1/examples", headers=IMAGE_TAG).status_code == 200
    assert (
        client.get("/api/v1/health", headers={"Origin": "https://evil.example"}).status_code == 200
    )


def test_any_origin_when_the_operator_allows_every_site() -> None:
    assert cross_site_reason({"origin": "https://a.example", "host": "b"}, ["*"]) is None
    assert cross_site_reason({"origin": "null", "host": "b"}, ["*"]) is not None
    assert cross_site_reason({"sec-fetch-site": "cross-site", "host": "b"}, ["*"]) is not None
