"""The served HTTP stack: connection caps, header, body and write deadlines, proxy trust."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest
import uvicorn

from app.config import Settings
from app.http_server import FILES_RESERVED, connection_cap, raise_file_limit, server_config
from tests.conftest import SAFE_PROGRAM
from tests.live_server import free_port, live_server, wait_until_healthy

PARTIAL_REQUEST = b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n"  # no blank line: never complete


def serve(**overrides: object):
    return live_server(Settings(isolation=False, **overrides))


def connect(base: str, stack: ExitStack) -> socket.socket:
    """A connection to the server, closed with the stack."""
    host, port = base.removeprefix("http://").split(":")
    return stack.enter_context(socket.create_connection((host, int(port)), timeout=30))


def half_open(base: str, count: int, stack: ExitStack) -> list[socket.socket]:
    """count connections that each sent an incomplete request."""
    sockets = []
    for _ in range(count):
        sock = connect(base, stack)
        sock.sendall(PARTIAL_REQUEST)
        sockets.append(sock)
    return sockets


def closed_by_server(sock: socket.socket, within: float = 30) -> bool:
    """Whether the server closes the connection (waits for it up to `within` seconds)."""
    sock.settimeout(within)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_connection_cap_stays_below_the_file_limit() -> None:
    assert connection_cap(Settings(max_connections=10**6), 4096) == 4096 - FILES_RESERVED
    assert connection_cap(Settings(max_connections=500), 4096) == 500
    assert raise_file_limit() >= 1024


def test_two_thousand_half_open_connections_leave_health_answering() -> None:
    if raise_file_limit() < 2 * 2000 + 2 * FILES_RESERVED:
        pytest.skip("the open-file limit is too low for 2,000 connections in one process")
    settings = {"max_connections": 3000, "max_connections_per_address": 3000}
    with serve(header_timeout_seconds=3, **settings) as (base, _), ExitStack() as stack:
        sockets = half_open(base, 2000, stack)
        response = httpx.get(f"{base}/api/v1/health", timeout=10)
        assert response.status_code == 200 and response.json()["status"] == "ok"
        assert all(closed_by_server(s) for s in sockets)  # each dropped at its header deadline


def test_slow_headers_are_dropped_and_complete_ones_answered() -> None:
    with serve(header_timeout_seconds=1) as (base, _), ExitStack() as stack:
        (sock,) = half_open(base, 1, stack)
        assert closed_by_server(sock)
        sock = connect(base, stack)
        sock.sendall(PARTIAL_REQUEST + b"\r\n")  # complete in one write: answered, then it idles
        sock.settimeout(10)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")


def test_connections_past_the_cap_are_closed_at_once() -> None:
    with serve(max_connections=20, header_timeout_seconds=60) as (base, _), ExitStack() as stack:
        sockets = half_open(base, 30, stack)
        assert all(closed_by_server(s) for s in sockets[20:])
        stack.close()  # the client lets go: the server serves again
        assert wait_until_healthy(base, seconds=15, request_timeout=5)


@pytest.fixture
def rate_limited_loopback() -> Iterator[str]:
    with serve(rate_limit_per_minute=1, rate_limit_localhost=True) as (base, _):
        yield base


def trace_as(base: str, forwarded_for: str, seed: int) -> int:
    body = {"code": SAFE_PROGRAM, "seed": seed}
    headers = {"X-Forwarded-For": forwarded_for}
    return httpx.post(f"{base}/api/v1/trace", json=body, headers=headers, timeout=60).status_code


def test_forwarded_for_from_an_untrusted_peer_buys_no_new_quota(rate_limited_loopback) -> None:
    assert trace_as(rate_limited_loopback, "203.0.113.1", 1) == 200
    assert trace_as(rate_limited_loopback, "203.0.113.2", 2) == 429


def test_forwarded_for_from_a_trusted_proxy_names_the_client() -> None:
    with serve(rate_limit_per_minute=1, rate_limit_localhost=True, trusted_proxies="127.0.0.1") as (
        base,
        _,
    ):
        assert trace_as(base, "203.0.113.1", 1) == 200
        assert trace_as(base, "203.0.113.2", 2) == 200  # another client, its own allowance
        assert trace_as(base, "203.0.113.1", 3) == 429


def test_no_redirect_to_the_host_header(rate_limited_loopback) -> None:
    response = httpx.get(
        f"{rate_limited_loopback}/api/v1/health/", headers={"Host": "evil.example"}, timeout=10
    )
    assert response.status_code == 404 and "location" not in response.headers


def test_connections_past_the_per_address_cap_are_closed_at_once() -> None:
    with (
        serve(max_connections_per_address=5, header_timeout_seconds=60) as (base, _),
        ExitStack() as stack,
    ):
        sockets = half_open(base, 8, stack)
        assert all(closed_by_server(s) for s in sockets[5:])
        assert not any(closed_by_server(s, within=0.5) for s in sockets[:5])
        stack.close()
        assert wait_until_healthy(base, seconds=15, request_timeout=5)


def test_a_trusted_proxy_is_not_held_to_the_per_address_cap() -> None:
    settings = {"max_connections_per_address": 2, "trusted_proxies": "127.0.0.1"}
    with serve(header_timeout_seconds=60, **settings) as (base, _), ExitStack() as stack:
        sockets = half_open(base, 6, stack)
        assert not any(closed_by_server(s, within=0.5) for s in sockets)


def test_a_body_sent_a_byte_at_a_time_is_cut_off_with_408() -> None:
    with serve(body_timeout_seconds=1) as (base, _), ExitStack() as stack:
        host, port = base.removeprefix("http://").split(":")
        sock = stack.enter_context(socket.create_connection((host, int(port)), timeout=30))
        sock.sendall(
            b"POST /api/v1/trace HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{"
        )
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
            if not answer.startswith(b"HTTP/1.1 408"):
                sock.sendall(b" ")  # a byte now and then: never the whole body
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408")
        assert json.loads(body)["detail"]["limit"] == "body_seconds"
        assert httpx.get(f"{base}/api/v1/health", timeout=10).status_code == 200


BIG_ANSWER = 64 * 1024 * 1024  # more than any socket buffers hold
WRITE_SECONDS = 1.0


def test_an_answer_the_client_never_reads_is_dropped() -> None:
    finished = threading.Event()

    async def big(scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        chunk = b"x" * (1 << 20)
        for _ in range(BIG_ANSWER // len(chunk)):  # each send waits while the client lags
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        finished.set()  # reached only once the answer is written or dropped

    settings = Settings(isolation=False, write_timeout_seconds=WRITE_SECONDS)
    port = free_port()
    server = uvicorn.Server(
        server_config(big, settings, host="127.0.0.1", port=port, log_level="warning")  # type: ignore[arg-type]
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        sock = None
        for _ in range(200):
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=30)
                break
            except ConnectionRefusedError:
                threading.Event().wait(0.05)
        assert sock is not None
        with sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            # 64 MiB cannot all sit in socket buffers: the last send returns only once the
            # server has dropped the connection of a client that reads nothing
            assert finished.wait(timeout=120)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
