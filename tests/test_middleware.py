"""ASGI middleware: the client address comes from X-Forwarded-For only through trusted proxies."""

from __future__ import annotations

import ipaddress

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from app.middleware import ForwardedFor


def echo_client(proxies: list[str], peer: str) -> TestClient:
    async def who(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.client.host if request.client else "-")

    app = ForwardedFor(
        Starlette(routes=[Route("/", who)]), [ipaddress.ip_network(p) for p in proxies]
    )
    return TestClient(app, client=(peer, 50000))


@pytest.mark.parametrize(
    ("proxies", "peer", "forwarded", "client"),
    [
        ([], "127.0.0.1", "203.0.113.9", "127.0.0.1"),  # loopback is not trusted by default
        ([], "198.51.100.1", "203.0.113.9", "198.51.100.1"),
        (["127.0.0.1/32"], "127.0.0.1", "203.0.113.9", "203.0.113.9"),
        (["10.0.0.0/8"], "10.1.2.3", "203.0.113.9, 10.9.9.9", "203.0.113.9"),  # two proxies
        (["10.0.0.0/8"], "10.1.2.3", "1.1.1.1, 203.0.113.9", "203.0.113.9"),  # spoofed left part
        (["10.0.0.0/8"], "192.0.2.7", "203.0.113.9", "192.0.2.7"),  # not from the proxy
        (["10.0.0.0/8"], "10.1.2.3", "not-an-address", "10.1.2.3"),
        (["10.0.0.0/8"], "10.1.2.3", "", "10.1.2.3"),
        (["::1/128"], "::1", "2001:db8::5", "2001:db8::5"),
    ],
)
def test_client_address(proxies: list[str], peer: str, forwarded: str, client: str) -> None:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    assert echo_client(proxies, peer).get("/", headers=headers).text == client
