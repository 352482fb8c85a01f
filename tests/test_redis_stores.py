"""The Redis stores against a real redis-server, each process played by its own RedisLink: an
answer cache bounded like the in-memory one, rate limits and per-session caps that hold over
every process, shared signing keys that rotate, and a Redis that goes away and comes back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from app import client_slots
from app.answer_cache import RedisAnswers, ResultCache
from app.client_identity import Client, SessionSigner
from app.client_slots import ClientSlots, RedisClientSlots
from app.rate_limits import RateLimited, RateLimiter, RedisRateLimiter
from app.sandbox.pool import PoolBusy
from app.session_keys import SharedSessionKeys
from app.shared_state import RedisLink
from tests.local_services import DEADLINE_SECONDS, RedisServer, redis_server

STUDENT = Client("198.51.100.7", "student")


async def until(condition: Callable[[], bool | Awaitable[bool]], what: str) -> None:
    """Wait until condition holds, with a generous deadline."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        outcome = condition()
        if not isinstance(outcome, bool):
            outcome = await outcome
        if outcome:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not reached in time: {what}")


async def links(server: RedisServer, count: int = 2) -> list[RedisLink]:
    started = [RedisLink(server.url) for _ in range(count)]
    for link in started:
        await link.start()
        assert link.up and link.mode == "redis"
    return started


async def close(*started: RedisLink) -> None:
    for link in started:
        await link.close()


def test_an_answer_cached_by_one_process_is_found_by_another_within_the_same_bounds() -> None:
    async def scenario(server: RedisServer) -> None:
        first, second = await links(server)
        one = RedisAnswers(ResultCache(entries=2, max_bytes=10**6), first)
        other = RedisAnswers(ResultCache(entries=2, max_bytes=10**6), second)
        await one.put("a", b"graph a")
        assert await other.get("a") == b"graph a"  # never in the other process's memory before
        assert await other.get("b") is None
        await one.put("b", b"graph b")
        reader = RedisAnswers(ResultCache(entries=2, max_bytes=10**6), second)
        assert await reader.get("a") == b"graph a"  # used again in Redis: b is the oldest now
        await one.put("c", b"graph c")
        fresh = RedisAnswers(ResultCache(entries=2, max_bytes=10**6), second)
        assert await fresh.get("b") is None and await fresh.get("a") == b"graph a"
        assert await fresh.get("c") == b"graph c"
        small = RedisAnswers(ResultCache(entries=100, max_bytes=10), first)
        for key in ("x", "y", "z"):
            await small.put(key, b"1234")  # 4 bytes each: two fit in 10
        fresh = RedisAnswers(ResultCache(entries=100, max_bytes=10), second)
        assert [await fresh.get(k) for k in ("x", "y", "z")] == [None, b"1234", b"1234"]
        await close(first, second)

    with redis_server() as server:
        asyncio.run(scenario(server))


def test_a_rate_limit_holds_over_every_process() -> None:
    async def scenario(server: RedisServer) -> None:
        first, second = await links(server)
        limiters = [
            RedisRateLimiter(RateLimiter(3, limit_localhost=False, per_address=5), link)
            for link in (first, second)
        ]
        for i in range(3):
            await limiters[i % 2].check(STUDENT)
        for limiter in limiters:
            with pytest.raises(RateLimited) as refused:
                await limiter.check(STUDENT)
            assert 1 <= refused.value.retry_after <= 61
        neighbour = Client(STUDENT.address, "neighbour")  # same address, own session
        await limiters[0].check(neighbour)
        await limiters[1].check(neighbour)
        with pytest.raises(RateLimited):  # the address's ceiling of 5 over both processes
            await limiters[1].check(Client(STUDENT.address, "third"))
        await limiters[0].check(Client("203.0.113.9", "elsewhere"))
        await close(first, second)

    with redis_server() as server:
        asyncio.run(scenario(server))


def test_a_sessions_slots_hold_over_every_process() -> None:
    async def scenario(server: RedisServer) -> None:
        first, second = await links(server)
        one, other = (
            RedisClientSlots(ClientSlots(in_flight=1, queued=1, per_address=10), link)
            for link in (first, second)
        )
        await one.acquire(STUDENT)  # running on the first process
        waiting = asyncio.ensure_future(other.acquire(STUDENT))  # queued on the second
        await asyncio.sleep(0.3)
        assert not waiting.done()
        with pytest.raises(PoolBusy, match="the limit is 1 running and 1 waiting"):
            await one.acquire(STUDENT)
        await other.acquire(Client(STUDENT.address, "another student"))  # sessions are apart
        one.release(STUDENT)
        await asyncio.wait_for(waiting, DEADLINE_SECONDS)  # the second process runs it now
        other.release(STUDENT)
        other.release(Client(STUDENT.address, "another student"))
        await until(lambda: not one._freeing and not other._freeing, "leases freed")
        await one.acquire(STUDENT)
        one.release(STUDENT)
        await close(first, second)

    with redis_server() as server:
        asyncio.run(scenario(server))


def test_the_leases_of_a_killed_process_lapse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_slots, "LEASE_SECONDS", 1)

    async def scenario(server: RedisServer) -> None:
        first, second = await links(server)
        killed = RedisClientSlots(ClientSlots(in_flight=1, queued=0), first)
        survivor = RedisClientSlots(ClientSlots(in_flight=1, queued=0), second)
        await killed.acquire(STUDENT)
        await first.close()  # gone without releasing: nobody renews its lease
        with pytest.raises(PoolBusy):
            await survivor.acquire(STUDENT)

        async def admitted() -> bool:
            try:
                await survivor.acquire(STUDENT)
            except PoolBusy:
                return False
            return True

        await until(admitted, "the dead process's lease lapsed")
        survivor.release(STUDENT)
        await close(second)

    with redis_server() as server:
        asyncio.run(scenario(server))


def test_processes_share_rotating_signing_keys() -> None:
    async def scenario(server: RedisServer) -> None:
        first, second = await links(server)
        signers = [SessionSigner.from_setting(""), SessionSigner.from_setting("")]
        before = signers[0].issue()  # signed with the first process's own key
        keys = [
            SharedSessionKeys(s, link, hours=1)
            for s, link in zip(signers, (first, second), strict=True)
        ]
        now = 1_000_000 * 3600.0
        for ring in keys:
            await ring.refresh(now)
        token = signers[0].issue()
        assert signers[1].verify(token) == token.split(".")[0]  # signed once, valid everywhere
        assert signers[0].verify(before) is not None and signers[1].verify(before) is None
        for ring in keys:
            await ring.refresh(now + 3600)  # the next period: a new key signs
        assert signers[1].verify(token) is not None  # yesterday's token lives on one period
        newer = signers[1].issue()
        assert newer.split(".")[1] != token.split(".")[1] and signers[0].verify(newer)
        for ring in keys:
            await ring.refresh(now + 2 * 3600)
        assert signers[0].verify(token) is None and signers[1].verify(token) is None
        assert signers[0].verify(newer) is not None
        await close(first, second)

    with redis_server() as server:
        asyncio.run(scenario(server))


def test_a_redis_that_goes_away_leaves_per_process_limits_and_comes_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario(server: RedisServer) -> None:
        (link,) = await links(server, 1)
        limiter = RedisRateLimiter(RateLimiter(2, limit_localhost=False), link)
        answers = RedisAnswers(ResultCache(entries=10, max_bytes=10**6), link)
        slots = RedisClientSlots(ClientSlots(in_flight=1, queued=0), link)
        await limiter.check(STUDENT)
        await answers.put("kept", b"graph")
        server.stop()
        await answers.put("new", b"graph 2")  # no error: kept in this process
        assert link.mode == "degraded"
        assert await answers.get("new") == b"graph 2" and await answers.get("kept") == b"graph"
        await limiter.check(STUDENT)  # this process's own window, which saw none before
        await limiter.check(STUDENT)
        with pytest.raises(RateLimited):
            await limiter.check(STUDENT)
        await slots.acquire(STUDENT)  # this process's own slots
        with pytest.raises(PoolBusy):
            await slots.acquire(STUDENT)
        slots.release(STUDENT)
        server.start()  # an empty Redis on the same port
        await until(lambda: link.up, "the link reconnected")
        assert link.mode == "redis"
        await limiter.check(STUDENT)  # counted in Redis again, which starts empty
        await slots.acquire(STUDENT)
        slots.release(STUDENT)
        await close(link)

    with caplog.at_level("WARNING", logger="autograd_explorer.shared_state"):
        with redis_server() as server:
            asyncio.run(scenario(server))
    said = " ".join(record.getMessage() for record in caplog.records)
    assert "Redis went away" in said and "Redis is back" in said
