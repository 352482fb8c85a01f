"""The link to the Redis that server processes share: up, down (each process then keeps its own
limits) and back again, with one log line at each change."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

log = logging.getLogger("autograd_explorer.shared_state")

COMMAND_SECONDS = 1.0  # a Redis slower than this counts as gone: users never wait on it
RECONNECT_SECONDS = 1.0  # how often a process asks a gone Redis whether it is back
KEEPER_SECONDS = 5.0  # how often a process renews its leases and reads the signing keys

T = TypeVar("T")
SharedMode = Literal["memory", "redis", "degraded"]


class SharedUnavailable(Exception):
    """Redis did not answer; the caller uses its own process's state instead."""


class RedisLink:
    """One process's connection to the shared Redis, and whether it is usable now.

    The client is made inside the server's event loop (start), not at import or app creation.
    While Redis is gone every call fails at once with SharedUnavailable, without a round trip,
    until the keeper's ping succeeds again."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.process_id = secrets.token_hex(8)  # names this process's leases
        self.up = False
        self._client: Any = None
        self._tasks: list[Callable[[], Awaitable[None]]] = []  # run by the keeper while up
        self._keeper: asyncio.Task[None] | None = None
        self._problem: str | None = None

    @property
    def mode(self) -> SharedMode:
        """'redis' while the shared state is used, 'degraded' while Redis is gone."""
        return "redis" if self.up else "degraded"

    def every_round(self, job: Callable[[], Awaitable[None]]) -> None:
        """Run job in each keeper round while Redis is up (lease renewal, key refresh)."""
        self._tasks.append(job)

    async def start(self) -> None:
        """Connect (a Redis that is not there yet is only a log line) and start the keeper."""
        import redis.asyncio as aioredis

        self._client = aioredis.from_url(
            self.url,
            socket_timeout=COMMAND_SECONDS,
            socket_connect_timeout=COMMAND_SECONDS,
            health_check_interval=30,
        )
        await self._ping()
        if not self.up:
            log.warning(
                "shared state: Redis at %s is not reachable (%s); each process keeps its own "
                "limits and cache until it is",
                _safe_url(self.url),
                self._problem,
            )
        await self._run_jobs()
        self._keeper = asyncio.ensure_future(self._keep())

    async def close(self) -> None:
        """Stop the keeper and close the connections."""
        if self._keeper is not None:
            self._keeper.cancel()
            try:
                await self._keeper
            except asyncio.CancelledError:
                pass
        if self._client is not None:
            try:
                await self._client.aclose()
            except Exception:  # closing a connection to a gone Redis is no error
                pass

    async def call(self, command: Callable[[Any], Awaitable[T]]) -> T:
        """command(client)'s result, or SharedUnavailable (marking Redis gone) when it fails."""
        if not self.up or self._client is None:
            raise SharedUnavailable(self._problem or "not connected")
        try:
            return await asyncio.wait_for(command(self._client), COMMAND_SECONDS * 2)
        except Exception as exc:
            if isinstance(exc, asyncio.CancelledError):
                raise
            self._went_away(exc)
            raise SharedUnavailable(str(exc)) from None

    def _went_away(self, exc: BaseException) -> None:
        from redis.exceptions import ResponseError

        if isinstance(exc, ResponseError):  # a bug of ours, not an outage: say so, stay up
            log.error("shared state: Redis refused a command: %s", exc)
            return
        if self.up:
            log.warning(
                "shared state: Redis went away (%s); each process keeps its own limits and "
                "cache until it is back",
                type(exc).__name__,
            )
        self.up = False
        self._problem = f"{type(exc).__name__}: {exc}"[:200]

    async def _ping(self) -> None:
        try:
            await asyncio.wait_for(self._client.ping(), COMMAND_SECONDS * 2)
        except Exception as exc:
            if isinstance(exc, asyncio.CancelledError):
                raise
            self.up = False
            self._problem = f"{type(exc).__name__}: {exc}"[:200]
            return
        if not self.up and self._problem is not None:
            log.warning("shared state: Redis is back; limits and cache are shared again")
        self.up = True
        self._problem = None

    async def _run_jobs(self) -> None:
        for job in self._tasks:
            if not self.up:
                return
            try:
                await job()
            except SharedUnavailable:
                return
            except Exception:  # a keeper job's bug must not stop the keeper
                log.exception("shared state: a keeper job failed")

    async def _keep(self) -> None:
        waited = 0.0
        while True:
            await asyncio.sleep(RECONNECT_SECONDS)
            waited += RECONNECT_SECONDS
            if not self.up:
                await self._ping()
                if self.up:
                    waited = KEEPER_SECONDS  # catch up at once
            if self.up and waited >= KEEPER_SECONDS:
                waited = 0.0
                await self._run_jobs()


def _safe_url(url: str) -> str:
    """The URL without a password, for logs."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}"
