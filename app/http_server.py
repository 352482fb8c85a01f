"""The uvicorn server of `serve`: connection caps, a deadline on each phase, no proxy trust."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import resource
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from app.config import Settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
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


BODY_LATE = json.dumps(
    {
        "detail": {
            "type": "Timeout",
            "limit": "body_seconds",
            "message": "the request body did not arrive in time",
        }
    }
).encode()


@dataclass(frozen=True)
class Deadlines:
    """How long a connection may take over each phase before it is closed."""

    header_seconds: float  # from opening (or the previous response) to complete headers
    body_seconds: float  # from complete headers to the body's last byte (then 408)
    write_seconds: float  # the longest a response may wait on a client that does not read


def bounded_protocol(
    max_connections: int,
    deadlines: Deadlines,
    per_address: int | None = None,
    exempt: Sequence[Network] = (),
) -> type[H11Protocol]:
    """uvicorn's h11 protocol with connection caps and deadlines on every phase of a request.

    uvicorn bounds none of these: its keep-alive timer stops at the first byte of a request, so
    a client that sends one header line (or one body byte) every few seconds holds a
    connection for ever; a client that never reads its answer keeps the whole answer buffered
    in the server; and limit_concurrency only answers 503 once headers are complete. Here a
    connection opened past max_connections, or past per_address from one peer address (proxies
    in exempt excepted: behind them every client shares one address), is closed at once; one
    whose headers or body are late is closed (with 408 for a late body); one whose answer has
    waited on the client for write_seconds is aborted, freeing its buffer."""
    open_by_address: Counter[str] = Counter()

    def counted(address: str) -> bool:
        if per_address is None:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return True
        return not any(ip in network for network in exempt)

    class BoundedH11Protocol(H11Protocol):
        """H11Protocol with connection caps and header, body and write deadlines."""

        _header_timer: asyncio.TimerHandle | None = None
        _body_timer: asyncio.TimerHandle | None = None
        _write_timer: asyncio.TimerHandle | None = None
        _address: str | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                transport.abort()
                return
            address = self.client[0] if self.client else ""
            if counted(address):
                self._address = address
                open_by_address[address] += 1
                if per_address is not None and open_by_address[address] > per_address:
                    transport.abort()
                    return
            self._arm_header_timer()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is h11.SEND_BODY:
                if self._body_timer is None:
                    self._body_timer = self.loop.call_later(deadlines.body_seconds, self._body_late)
            else:
                self._cancel("_body_timer")
            if self.conn.their_state is not h11.IDLE:  # the headers of a request are complete
                self._cancel("_header_timer")

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._arm_header_timer()

        def pause_writing(self) -> None:
            super().pause_writing()
            if self._write_timer is None:
                self._write_timer = self.loop.call_later(deadlines.write_seconds, self._unread)

        def resume_writing(self) -> None:
            super().resume_writing()
            self._cancel("_write_timer")

        def connection_lost(self, exc: Exception | None) -> None:
            for timer in ("_header_timer", "_body_timer", "_write_timer"):
                self._cancel(timer)
            if self._address is not None:
                open_by_address[self._address] -= 1
                if open_by_address[self._address] <= 0:
                    del open_by_address[self._address]
                self._address = None
            super().connection_lost(exc)

        def _arm_header_timer(self) -> None:
            self._cancel("_header_timer")
            self._header_timer = self.loop.call_later(deadlines.header_seconds, self._headers_late)

        def _cancel(self, name: str) -> None:
            timer = getattr(self, name)
            if timer is not None:
                timer.cancel()
                setattr(self, name, None)

        def _headers_late(self) -> None:
            self._header_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.abort()

        def _body_late(self) -> None:
            self._body_timer = None
            if self.conn.their_state is not h11.SEND_BODY or self.transport.is_closing():
                return
            cycle = self.cycle
            if cycle is not None and not cycle.response_started:
                cycle.response_started = True  # the application's answer is no longer sent
                headers = [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(BODY_LATE)).encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"connection", b"close"),
                ]
                response = h11.Response(status_code=408, headers=headers, reason=b"Request Timeout")
                self.transport.write(self.conn.send(response))
                self.transport.write(self.conn.send(h11.Data(data=BODY_LATE)))
                self.transport.write(self.conn.send(h11.EndOfMessage()))
            if cycle is not None:  # the application reads a disconnect, not the rest of a body
                cycle.disconnected = True
                cycle.message_event.set()
            self.transport.close()

        def _unread(self) -> None:
            self._write_timer = None
            if not self.transport.is_closing():
                self.transport.abort()

    return BoundedH11Protocol


def server_config(app: FastAPI, settings: Settings, **options: Any) -> uvicorn.Config:
    """The uvicorn configuration the explorer is served with (options pass through)."""
    cap = connection_cap(settings, raise_file_limit())
    return uvicorn.Config(
        app,
        host=options.pop("host", settings.host),
        port=options.pop("port", settings.port),
        http=bounded_protocol(
            cap,
            Deadlines(
                header_seconds=settings.header_timeout_seconds,
                body_seconds=settings.body_timeout_seconds,
                write_seconds=settings.write_timeout_seconds,
            ),
            per_address=settings.max_connections_per_address,
            exempt=settings.proxy_networks(),
        ),
        limit_concurrency=cap,
        backlog=min(2048, cap),
        # X-Forwarded-For is read by app.middleware.ForwardedFor, only from trusted proxies.
        proxy_headers=False,
        forwarded_allow_ips="",
        server_header=False,
        **options,
    )
