"""Security headers on every response: Content-Security-Policy, nosniff, framing policy."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The pages load scripts, styles, images and data from this origin only; no inline script.
# Inline styles stay allowed: the editor and the graph set style attributes, and a style runs
# no code.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'"
)
# Anything else (JSON, exports, static files) runs nothing when opened as a document: an SVG
# export keeps its inline styles, never a script.
OTHER_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"
FRAMABLE_PATHS = frozenset({"/embed"})  # the embeddable player, for any page's iframe
PAGE_PATHS = frozenset({"/", "/embed", "/docs"})


def content_policy(path: str) -> str:
    """The Content-Security-Policy of a response to path (with its frame-ancestors)."""
    base = PAGE_POLICY if path in PAGE_PATHS else OTHER_POLICY
    # The embed names no frame-ancestors at all: `frame-ancestors *` matches network schemes
    # only, and would refuse a slide deck opened from a file.
    return base if path in FRAMABLE_PATHS else f"{base}; frame-ancestors 'none'"


def security_headers(path: str) -> list[tuple[bytes, bytes]]:
    """The headers every response to path carries."""
    headers = [
        (b"content-security-policy", content_policy(path).encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
    ]
    if path not in FRAMABLE_PATHS:
        headers.append((b"x-frame-options", b"DENY"))
    return headers


class SecurityHeaders:
    """Add security_headers to each HTTP response; a route's own CSP (a hashed inline script)
    replaces the default one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = security_headers(scope.get("path", ""))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                added = [(n, v) for n, v in extra if n not in present]
                message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
