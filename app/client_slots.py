"""Caps on the requests one client has in flight: per session (past them they queue, past the
queue 503), under a ceiling for each address that a lecture hall behind one NAT fits; held in
one process's memory, or over every process in Redis."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from dataclasses import dataclass, field

from app.client_identity import Client
from app.sandbox.pool import PoolBusy
from app.shared_state import RedisLink, SharedUnavailable


@dataclass
class _Session:
    slots: asyncio.Semaphore
    holding_or_waiting: int = 0


class ClientSlots:
    """Per-session slots: `in_flight` run at once, `queued` more wait, the rest are refused; one
    address has at most `per_address` requests running or waiting over all its sessions."""

    def __init__(self, in_flight: int, queued: int, per_address: int = 0) -> None:
        self.in_flight = in_flight
        self.queued = queued
        self.per_address = per_address
        self._sessions: dict[str, _Session] = {}
        self._addresses: Counter[str] = Counter()

    async def acquire(self, client: Client | None) -> None:
        """Take one of the client's slots, waiting in its queue; PoolBusy when that is full."""
        if self.in_flight <= 0 or client is None or client.key is None:
            return
        key, address = client.key, client.address
        if address is not None and 0 < self.per_address <= self._addresses[address]:
            raise PoolBusy(
                f"this address already has {self._addresses[address]} requests running or "
                f"waiting (the limit is {self.per_address})"
            )
        state = self._sessions.get(key)
        if state is None:
            state = self._sessions[key] = _Session(asyncio.Semaphore(self.in_flight))
        if state.holding_or_waiting >= self.in_flight + self.queued:
            raise PoolBusy(
                f"this client already has {state.holding_or_waiting} requests running or "
                f"waiting (the limit is {self.in_flight} running and {self.queued} waiting)"
            )
        state.holding_or_waiting += 1
        if address is not None:
            self._addresses[address] += 1
        try:
            await state.slots.acquire()
        except BaseException:
            self._leave(client, state)
            raise

    def release(self, client: Client | None) -> None:
        """Give a slot back."""
        if self.in_flight <= 0 or client is None or client.key is None:
            return
        state = self._sessions.get(client.key)
        if state is not None:
            state.slots.release()
            self._leave(client, state)

    def _leave(self, client: Client, state: _Session) -> None:
        state.holding_or_waiting -= 1
        if state.holding_or_waiting <= 0:
            del self._sessions[client.key]  # type: ignore[arg-type]
        if client.address is not None:
            self._addresses[client.address] -= 1
            if self._addresses[client.address] <= 0:
                del self._addresses[client.address]

    def active(self, client: Client) -> int:
        """Requests of a client's session running or waiting now."""
        state = self._sessions.get(client.key) if client.key else None
        return state.holding_or_waiting if state else 0

    def from_address(self, address: str) -> int:
        """Requests of all sessions of one address running or waiting now."""
        return self._addresses.get(address, 0)


LEASE_SECONDS = 20  # a lease not renewed for this long (its process died) is dropped
POLL_SECONDS = (0.02, 0.25)  # first and longest pause between asks for a running slot

_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1e6 "
# KEYS: the session's and maybe the address's leases; ARGV: their limits, lease id, seconds.
ADMIT_SCRIPT = (
    _NOW + "for i, key in ipairs(KEYS) do "
    "  redis.call('ZREMRANGEBYSCORE', key, '-inf', now) "
    "  local held = redis.call('ZCARD', key) "
    "  if held >= tonumber(ARGV[i]) then return {i, held} end "
    "end "
    "local lease = ARGV[#KEYS + 1] local seconds = tonumber(ARGV[#KEYS + 2]) "
    "for i, key in ipairs(KEYS) do "
    "  redis.call('ZADD', key, now + seconds, lease) "
    "  redis.call('EXPIRE', key, math.ceil(seconds) + 1) "
    "end return {0, 0}"
)
# KEYS[1]: the session's running leases; ARGV: its in-flight cap, lease id, seconds.
RUN_SCRIPT = (
    _NOW + "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) "
    "if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end "
    "redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2]) "
    "redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3])) + 1) return 1"
)
RELEASE_SCRIPT = "for _, key in ipairs(KEYS) do redis.call('ZREM', key, ARGV[1]) end return 1"
# KEYS[i] holds lease ARGV[i + 1]; each still there is kept for ARGV[1] more seconds.
RENEW_SCRIPT = (
    _NOW + "for i, key in ipairs(KEYS) do "
    "  redis.call('ZADD', key, 'XX', now + tonumber(ARGV[1]), ARGV[i + 1]) "
    "  redis.call('EXPIRE', key, math.ceil(tonumber(ARGV[1])) + 1) "
    "end return 1"
)


@dataclass(eq=False)
class _Lease:
    """One request's hold in Redis (or, with local set, in this process's ClientSlots)."""

    id: str
    keys: list[str] = field(default_factory=list)
    local: bool = False


class RedisClientSlots:
    """The same caps counted over every process: a session's requests running or waiting, and
    its address's, are leases in Redis that this process renews while they last (a killed
    process's leases lapse after LEASE_SECONDS); while Redis is gone, this process's own
    ClientSlots."""

    def __init__(self, local: ClientSlots, link: RedisLink) -> None:
        self.local = local
        self.link = link
        self._count = itertools.count()
        self._live: set[_Lease] = set()  # leases to renew: waiting or running
        self._held: dict[str, list[_Lease]] = {}  # running, by client key
        self._freeing: set[asyncio.Task[None]] = set()
        link.every_round(self._renew)

    @property
    def in_flight(self) -> int:
        """Requests of one session that run at once."""
        return self.local.in_flight

    async def acquire(self, client: Client | None) -> None:
        """Take one of the client's slots, waiting in its queue; PoolBusy when that is full."""
        if self.local.in_flight <= 0 or client is None or client.key is None:
            return
        lease = await self._admit(client)
        self._live.add(lease)
        try:
            if lease.local:
                await self.local.acquire(client)
            else:
                await self._wait_to_run(client, lease)
        except BaseException:
            self._live.discard(lease)
            self._free(lease, client)
            raise
        self._held.setdefault(client.key, []).append(lease)

    def release(self, client: Client | None) -> None:
        """Give a slot back."""
        if self.local.in_flight <= 0 or client is None or client.key is None:
            return
        leases = self._held.get(client.key)
        if not leases:
            return
        lease = leases.pop()
        if not leases:
            del self._held[client.key]
        self._live.discard(lease)
        if lease.local:
            self.local.release(client)
        else:
            self._free(lease, client)

    async def _admit(self, client: Client) -> _Lease:
        key = client.key
        assert key is not None
        lease = _Lease(f"{self.link.process_id}:{next(self._count)}")
        limits = [self.local.in_flight + self.local.queued]
        lease.keys = [f"ae:slots:{key}"]
        if client.address is not None and self.local.per_address > 0:
            lease.keys.append(f"ae:slots:address:{client.address}")
            limits.append(self.local.per_address)
        try:
            refused, held = await self.link.call(
                lambda r: r.eval(
                    ADMIT_SCRIPT, len(lease.keys), *lease.keys, *limits, lease.id, LEASE_SECONDS
                )
            )
        except SharedUnavailable:
            return _Lease(lease.id, local=True)
        if int(refused) == 1:
            raise PoolBusy(
                f"this client already has {int(held)} requests running or waiting (the limit "
                f"is {self.local.in_flight} running and {self.local.queued} waiting)"
            )
        if int(refused) == 2:
            raise PoolBusy(
                f"this address already has {int(held)} requests running or waiting (the "
                f"limit is {self.local.per_address})"
            )
        lease.keys.append(f"ae:running:{key}")
        return lease

    async def _wait_to_run(self, client: Client, lease: _Lease) -> None:
        pause = POLL_SECONDS[0]
        running = lease.keys[-1]
        while True:
            try:
                started = await self.link.call(
                    lambda r: r.eval(
                        RUN_SCRIPT, 1, running, self.local.in_flight, lease.id, LEASE_SECONDS
                    )
                )
            except SharedUnavailable:  # Redis went away while waiting: this process's caps
                await self.local.acquire(client)
                lease.local = True
                return
            if int(started):
                return
            await asyncio.sleep(pause)
            pause = min(pause * 2, POLL_SECONDS[1])

    def _free(self, lease: _Lease, client: Client) -> None:
        if lease.local:
            return
        task = asyncio.ensure_future(self._free_now(lease))
        self._freeing.add(task)
        task.add_done_callback(self._freeing.discard)

    async def _free_now(self, lease: _Lease) -> None:
        try:
            await self.link.call(
                lambda r: r.eval(RELEASE_SCRIPT, len(lease.keys), *lease.keys, lease.id)
            )
        except SharedUnavailable:
            pass  # not renewed any more, the lease lapses by itself

    async def _renew(self) -> None:
        shared = [lease for lease in list(self._live) if not lease.local]
        pairs = [(key, lease.id) for lease in shared for key in lease.keys]
        if not pairs:
            return
        keys, ids = [k for k, _ in pairs], [i for _, i in pairs]
        await self.link.call(lambda r: r.eval(RENEW_SCRIPT, len(keys), *keys, LEASE_SECONDS, *ids))
