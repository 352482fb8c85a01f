"""The explorer with AE_REDIS_URL: health says where the shared state lives, and a Redis that is
not there at start is a log line and a health field, never an error for users."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.shared_state import _safe_url
from tests.conftest import SAFE_PROGRAM, w_grad
from tests.live_server import free_port
from tests.local_services import redis_server


def test_without_redis_everything_stays_in_the_process() -> None:
    with TestClient(create_app(Settings(isolation=False))) as client:
        health = client.get("/api/v1/health").json()
    assert health["shared_state"] == "memory"


def test_an_unreachable_redis_degrades_to_this_process(caplog: pytest.LogCaptureFixture) -> None:
    gone = f"redis://:secret@127.0.0.1:{free_port()}/0"  # nothing listens there
    settings = Settings(isolation=False, redis_url=gone, rate_limit_per_minute=2)
    with caplog.at_level("WARNING", logger="autograd_explorer.shared_state"):
        with TestClient(create_app(settings)) as client:
            assert client.get("/api/v1/health").json()["shared_state"] == "degraded"
            token = client.get("/api/v1/session").json()["token"]
            session = {"X-AE-Session": token}
            first = client.post("/api/v1/trace", json={"code": SAFE_PROGRAM}, headers=session)
            assert first.status_code == 200 and w_grad(first.json()) == [5.0]
            health = client.get("/api/v1/health").json()
            assert health["programs_run"] == 1
            client.post("/api/v1/trace", json={"code": SAFE_PROGRAM}, headers=session)
            assert client.get("/api/v1/health").json()["programs_run"] == 1  # cached here
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "is not reachable" in said and "secret" not in said  # no password in the logs
    assert _safe_url(gone).startswith("redis://***@127.0.0.1:")


def test_an_app_on_redis_says_so_and_answers_from_the_shared_cache() -> None:
    with redis_server() as redis:
        settings = Settings(isolation=False, redis_url=redis.url)
        with TestClient(create_app(settings)) as one:
            assert one.get("/api/v1/health").json()["shared_state"] == "redis"
            token = one.get("/api/v1/session").json()["token"]
            traced = one.post(
                "/api/v1/trace", json={"code": SAFE_PROGRAM}, headers={"X-AE-Session": token}
            )
        with TestClient(create_app(settings)) as other:  # a second process, its memory empty
            again = other.post(
                "/api/v1/trace", json={"code": SAFE_PROGRAM}, headers={"X-AE-Session": token}
            )
            assert other.get("/api/v1/health").json()["programs_run"] == 0
    assert again.status_code == 200 and again.content == traced.content
