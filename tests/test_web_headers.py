"""Security headers: the exact Content-Security-Policy, nosniff and framing policy of each answer."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from fastapi.testclient import TestClient

from app.web_headers import content_policy

PAGE = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'"
)
OTHER = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"


@pytest.fixture(scope="module")
def client(inprocess_client) -> TestClient:
    return inprocess_client


@pytest.mark.parametrize(
    ("path", "status", "policy"),
    [
        ("/", 200, f"{PAGE}; frame-ancestors 'none'"),
        ("/api/v1/health", 200, f"{OTHER}; frame-ancestors 'none'"),
        ("/api/v1/examples", 200, f"{OTHER}; frame-ancestors 'none'"),
        ("/static/js/app.js", 200, f"{OTHER}; frame-ancestors 'none'"),
        ("/openapi.json", 200, f"{OTHER}; frame-ancestors 'none'"),
        ("/no/such/page", 404, f"{OTHER}; frame-ancestors 'none'"),
    ],
)
def test_every_answer_but_embed_is_never_framed(
    client: TestClient, path: str, status: int, policy: str
) -> None:
    answer = client.get(path)
    assert answer.status_code == status
    assert answer.headers["content-security-policy"] == policy
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "same-origin"


def test_the_embed_may_be_framed_by_any_page(client: TestClient) -> None:
    answer = client.get("/embed")
    assert answer.status_code == 200
    # no frame-ancestors: `*` would refuse a slide opened from a file (tests/test_teaching.py)
    assert answer.headers["content-security-policy"] == PAGE
    assert "x-frame-options" not in answer.headers
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_refusals_of_the_middleware_carry_the_headers_too(client: TestClient) -> None:
    answer = client.post(
        "/api/v1/trace", content=b"x" * (300 * 1024), headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 413
    assert answer.headers["content-security-policy"] == f"{OTHER}; frame-ancestors 'none'"
    assert answer.headers["x-frame-options"] == "DENY"


def test_the_pages_hold_no_inline_script(client: TestClient) -> None:
    for path in ("/", "/embed"):
        html = client.get(path).text
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.DOTALL)
        assert scripts and all('src="/static/' in attrs and not body for attrs, body in scripts)
        assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers
        assert not re.search(r"(src|href)=\"(https?:)?//", html)  # nothing from another site


def test_the_docs_page_allows_exactly_its_own_inline_script(client: TestClient) -> None:
    answer = client.get("/docs")
    (body,) = re.findall(r"<script>(.*?)</script>", answer.text, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    expected = content_policy("/docs").replace(
        "script-src 'self'", f"script-src 'self' 'sha256-{digest}'"
    )
    assert answer.headers["content-security-policy"] == expected
    assert answer.headers["x-frame-options"] == "DENY"
