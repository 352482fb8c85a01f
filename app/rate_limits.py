"""Per-minute request allowances: per client session and, as a ceiling over all its sessions,
per address; counted in one process's memory, or over every process in Redis."""

from __future__ import annotations

import ipaddress
import itertools
import time
from collections import deque
from typing import Protocol

from app.client_identity import Client
from app.shared_state import RedisLink, SharedUnavailable

WINDOW_SECONDS = 60


class RateLimited(Exception):
    """A client sent more requests than its per-minute allowance."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many requests; retry in {retry_after} s")
        self.retry_after = retry_after


def is_loopback(host: str) -> bool:
    """Whether an address is this machine (exempt from per-client limits unless configured)."""
    if host in ("localhost", "testclient"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RateLimits(Protocol):
    """Counts a client's requests against its allowances."""

    async def check(self, client: Client | None) -> None:
        """RateLimited when the client (or its address) is over its allowance."""


class RateLimiter:
    """Sliding one-minute windows of request times in this process: per client (its session,
    else its address) and, as a ceiling over all its sessions, per address."""

    def __init__(self, per_minute: int, limit_localhost: bool, per_address: int = 0) -> None:
        self.per_minute = per_minute
        self.per_address = per_address
        self.limit_localhost = limit_localhost
        self._seen: dict[str, deque[float]] = {}

    def windows(self, client: Client | None) -> list[tuple[str, int]]:
        """(window key, allowance) that a request of the client counts against."""
        if self.per_minute <= 0 or client is None or client.key is None:
            return []
        if not self.limit_localhost and client.address and is_loopback(client.address):
            return []
        windows = [(client.key, self.per_minute)]
        if self.per_address > 0 and client.address is not None:  # all sessions of the address
            windows.append((f"ceiling:{client.address}", self.per_address))
        return windows

    async def check(self, client: Client | None) -> None:
        """RateLimited when the client (or its address) is over its allowance."""
        self.check_now(client)

    def check_now(self, client: Client | None) -> None:
        """The same check, from code that is not a coroutine."""
        windows = self.windows(client)
        if not windows:
            return
        now = time.monotonic()
        for key, allowance in windows:
            window = self._window(key, now)
            if len(window) >= allowance:
                raise RateLimited(max(1, int(WINDOW_SECONDS - (now - window[0])) + 1))
        for key, _ in windows:
            self._seen[key].append(now)
        if len(self._seen) > 10_000:  # forget idle clients
            idle = [k for k, v in self._seen.items() if not v or now - v[-1] > WINDOW_SECONDS]
            for key in idle:
                del self._seen[key]

    def _window(self, key: str, now: float) -> deque[float]:
        window = self._seen.setdefault(key, deque())
        while window and now - window[0] > WINDOW_SECONDS:
            window.popleft()
        return window


# KEYS: the windows; ARGV: their allowances, then a member name unique to this request.
CHECK_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. (now - 60))
  if redis.call('ZCARD', key) >= tonumber(ARGV[i]) then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    return math.max(1, math.floor(60 - (now - tonumber(oldest[2]))) + 1)
  end
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[#KEYS + 1] .. ':' .. i)
  redis.call('EXPIRE', key, 61)
end
return 0
"""


class RedisRateLimiter:
    """The same windows kept in Redis, so that a client's allowance holds over every process;
    this process's own windows while Redis is gone."""

    def __init__(self, local: RateLimiter, link: RedisLink) -> None:
        self.local = local
        self.link = link
        self._count = itertools.count()

    async def check(self, client: Client | None) -> None:
        """RateLimited when the client (or its address) is over its allowance anywhere."""
        windows = self.local.windows(client)
        if not windows:
            return
        keys = [f"ae:rate:{key}" for key, _ in windows]
        member = f"{self.link.process_id}:{next(self._count)}"
        args = [allowance for _, allowance in windows] + [member]
        try:
            retry_after = await self.link.call(
                lambda r: r.eval(CHECK_SCRIPT, len(keys), *keys, *args)
            )
        except SharedUnavailable:
            self.local.check_now(client)
            return
        if int(retry_after) > 0:
            raise RateLimited(int(retry_after))
