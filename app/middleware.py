"""ASGI middleware: refuse oversized request bodies; read the client from trusted proxies only."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodySizeLimit:
    """413 for a body whose declared or streamed size is over max_bytes."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            {
                "detail": {
                    "type": "LimitExceeded",
                    "limit": "request_bytes",
                    "message": f"the request body is over {self.max_bytes} bytes",
                }
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ForwardedFor:
    """Take the client address from X-Forwarded-For, but only from a trusted proxy.

    The chain is read from the right: the first address not itself a trusted proxy is the
    client. A request that reaches the server directly keeps its peer address whatever its
    headers say, so a new header value never buys a new rate-limit allowance."""

    def __init__(self, app: ASGIApp, proxies: Sequence[Network]) -> None:
        self.app = app
        self.proxies = list(proxies)

    def _trusted(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.strip().strip("[]"))
        except ValueError:
            return False
        return any(address in network for network in self.proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] in ("http", "websocket") and client and self._trusted(client[0]):
            forwarded = b",".join(
                value for name, value in scope.get("headers") or [] if name == b"x-forwarded-for"
            )
            hops = [h.strip() for h in forwarded.decode("latin-1").split(",") if h.strip()]
            for hop in reversed(hops):
                if not self._trusted(hop):
                    try:
                        host = str(ipaddress.ip_address(hop.strip("[]")))
                    except ValueError:
                        break  # garbage from the proxy's side: keep the proxy as the client
                    scope = {**scope, "client": (host, 0)}
                    break
        await self.app(scope, receive, send)
