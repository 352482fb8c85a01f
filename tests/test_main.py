"""The assembled app: CORS only for the configured origins."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app

SITE = "https://course.example.edu"


def client(**settings: object) -> TestClient:
    return TestClient(create_app(Settings(isolation=False, **settings)))


def test_cors_is_off_by_default() -> None:
    with client() as c:
        answer = c.get("/api/v1/health", headers={"Origin": SITE})
        assert answer.status_code == 200
        assert "access-control-allow-origin" not in answer.headers
        preflight = c.options(
            "/api/v1/trace",
            headers={"Origin": SITE, "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in preflight.headers


def test_cors_allows_the_configured_origins_only() -> None:
    with client(cors_origins=[SITE]) as c:
        preflight = c.options(
            "/api/v1/trace",
            headers={
                "Origin": SITE,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == SITE
        assert "POST" in preflight.headers["access-control-allow-methods"]
        answer = c.get("/api/v1/examples", headers={"Origin": SITE})
        assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == SITE
        assert "Retry-After" in answer.headers["access-control-expose-headers"]
        other = c.get("/api/v1/examples", headers={"Origin": "https://elsewhere.example"})
        assert "access-control-allow-origin" not in other.headers
        refused = c.options(
            "/api/v1/trace",
            headers={
                "Origin": "https://elsewhere.example",
                "Access-Control-Request-Method": "POST",
            },
        )
        assert refused.status_code == 400


def test_cors_origins_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AE_CORS_ORIGINS", f"{SITE}/, http://localhost:5173")
    assert Settings().cors_origins == [SITE, "http://localhost:5173"]
    monkeypatch.setenv("AE_CORS_ORIGINS", "")
    assert Settings().cors_origins == []
    monkeypatch.setenv("AE_CORS_ORIGINS", "*")
    with client(cors_origins=Settings().cors_origins) as c:
        answer = c.get("/api/v1/health", headers={"Origin": "https://any.example"})
        assert answer.headers["access-control-allow-origin"] == "*"
