"""The uvicorn server of `serve`: a connection cap, a header deadline, no proxy trust by default."""

from __future__ import annotations

import asyncio
import resource
from typing import Any

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from app.config import Settings

FILES_RESERVED = 256  # open files kept free for workers, graphviz, logs and static files


def raise_file_limit() -> int:
    """Raise the soft open-file limit to the hard one; the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def connection_cap(settings: Settings, file_limit: int) -> int:
    """The most connections served at once: the setting, kept below the open-file limit."""
    return max(1, min(settings.max_connections, file_limit - FILES_RESERVED))


def bounded_protocol(max_connections: int, header_seconds: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol that closes connections past the cap and slow request headers.

    uvicorn bounds neither: its keep-alive timer stops at the first byte of a request, so a
    client that sends one header line every few seconds holds a connection (and a file) for
    ever, and limit_concurrency only answers 503 once headers are complete. Here a connection
    opened past max_connections is closed at once, and one whose request headers are not
    complete header_seconds after it opened (or after its previous response) is closed.
    """

    class BoundedH11Protocol(H11Protocol):
        """H11Protocol with a connection cap and a request-header deadline."""

        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                transport.abort()
                return
            self._arm_header_timer()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:  # the headers of a request are complete
                self._cancel_header_timer()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._arm_header_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_header_timer()
            super().connection_lost(exc)

        def _arm_header_timer(self) -> None:
            self._cancel_header_timer()
            self._header_timer = self.loop.call_later(header_seconds, self._headers_late)

        def _cancel_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_late(self) -> None:
            self._header_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.abort()

    return BoundedH11Protocol


def server_config(app: FastAPI, settings: Settings, **options: Any) -> uvicorn.Config:
    """The uvicorn configuration the explorer is served with (options pass through)."""
    cap = connection_cap(settings, raise_file_limit())
    return uvicorn.Config(
        app,
        host=options.pop("host", settings.host),
        port=options.pop("port", settings.port),
        http=bounded_protocol(cap, settings.header_timeout_seconds),
        limit_concurrency=cap,
        backlog=min(2048, cap),
        # X-Forwarded-For is read by app.middleware.ForwardedFor, only from trusted proxies.
        proxy_headers=False,
        forwarded_allow_ips="",
        server_header=False,
        **options,
    )
