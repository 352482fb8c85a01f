"""Sessions: signed anonymous tokens, the cookie the page gets, and sessions as the unit of caps."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from app.client_identity import SESSION_COOKIE, SESSION_HEADER, SessionSigner
from app.config import Settings
from app.main import create_app


def test_tokens_verify_and_forgeries_do_not() -> None:
    signer = SessionSigner(b"k" * 32)
    token = signer.issue()
    session, signature = token.split(".")
    assert signer.verify(token) == session
    assert signer.issue() != token
    assert SessionSigner(b"other key").verify(token) is None
    for forged in (
        f"{session}x.{signature}",
        f"{session}.{signature[:-1]}A" if signature[-1] != "A" else f"{session}.{signature[:-1]}B",
        f"attacker.{signature}",
        session,
        "",
        None,
        "a.b.c",
        "x" * 5000,
    ):
        assert signer.verify(forged) is None, forged


def test_the_page_gets_a_session_cookie_on_first_load() -> None:
    with TestClient(create_app(Settings(isolation=False))) as client:
        first = client.get("/")
        cookie = first.headers["set-cookie"]
        token = client.cookies[SESSION_COOKIE]
        assert cookie.startswith(f"{SESSION_COOKIE}={token};")
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        meta = re.search(r'<meta name="ae-session" content="([^"]+)">', first.text)
        assert meta and meta.group(1) == token
        again = client.get("/embed")  # the cookie comes back: the same session, no new cookie
        assert "set-cookie" not in again.headers
        assert f'content="{token}"' in again.text


def test_a_forged_cookie_is_replaced() -> None:
    with TestClient(create_app(Settings(isolation=False))) as client:
        answer = client.get("/", headers={"Cookie": f"{SESSION_COOKIE}=mine.forged"})
        assert answer.status_code == 200
        token = answer.cookies[SESSION_COOKIE]
        assert token != "mine.forged" and app_signer(client).verify(token) is not None


def app_signer(client: TestClient) -> SessionSigner:
    return client.app.state.sessions  # type: ignore[attr-defined]


def test_the_key_setting_signs_tokens_that_outlive_a_restart() -> None:
    settings = Settings(isolation=False, session_key="a long operator secret")
    with TestClient(create_app(settings)) as one, TestClient(create_app(settings)) as two:
        token = one.get("/api/v1/session").json()["token"]
        assert app_signer(two).verify(token) is not None
    fresh = TestClient(create_app(Settings(isolation=False)))
    assert app_signer(fresh).verify(token) is None  # a random key: sessions end with a restart


def new_session(client: TestClient) -> str:
    """A fresh session's token (the test client forgets the cookie it came with)."""
    token = client.get("/api/v1/session").json()["token"]
    client.cookies.clear()
    return token


def trace(client: TestClient, token: str | None, seed: int) -> int:
    headers = {SESSION_HEADER: token} if token else {}
    body = {"code": "x = 1\n", "seed": seed}
    return client.post("/api/v1/trace", json=body, headers=headers).status_code


def test_caps_count_per_session_under_a_ceiling_per_address() -> None:
    settings = Settings(
        isolation=False,
        rate_limit_per_minute=2,
        rate_limit_localhost=True,
        address_rate_limit_per_minute=6,
    )
    with TestClient(create_app(settings)) as client:
        alice, bob, carol = (new_session(client) for _ in range(3))
        assert len({alice, bob, carol}) == 3
        assert [trace(client, alice, i) for i in range(3)] == [200, 200, 429]
        assert [trace(client, bob, i) for i in range(2)] == [200, 200]  # her own allowance
        assert trace(client, "bob.forged", 0) == 200  # no session: the address's own allowance
        assert trace(client, carol, 0) == 200  # the address's sixth request
        assert trace(client, carol, 1) == 429  # past the ceiling of the address
