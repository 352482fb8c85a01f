"""The per-client cap on traces in flight: two run, a few wait, the rest get 503."""

from __future__ import annotations

import asyncio

import pytest

from app.client_slots import ClientSlots
from app.config import Settings
from app.sandbox.pool import PoolBusy
from app.schemas import TraceRequest
from app.service import TraceService


def test_slots_queue_then_refuse_and_free_up() -> None:
    async def scenario() -> None:
        slots = ClientSlots(in_flight=2, queued=1)
        await slots.acquire("a")
        await slots.acquire("a")
        waiting = asyncio.ensure_future(slots.acquire("a"))
        await asyncio.sleep(0)
        assert not waiting.done() and slots.active("a") == 3
        with pytest.raises(PoolBusy, match="2 running and 1 waiting"):
            await slots.acquire("a")
        await slots.acquire("b")  # another client is not held up
        slots.release("a")
        await waiting
        slots.release("a")
        slots.release("a")
        slots.release("b")
        assert slots.active("a") == 0 and slots.active("b") == 0

    asyncio.run(scenario())


def test_a_client_past_its_queue_gets_busy_while_others_are_served() -> None:
    slow = "import time\nimport torch\ntime.sleep({})\nx = torch.ones(1, requires_grad=True)\n"
    settings = Settings(isolation=False, client_in_flight=1, client_queue=1, cache_entries=0)
    service = TraceService(settings, None)

    async def scenario() -> list[object]:
        requests = [TraceRequest(code=slow.format(0.5), seed=i) for i in range(3)]
        crowd = [service.trace(r, "198.51.100.7") for r in requests]
        other = service.trace(TraceRequest(code=slow.format(0)), "198.51.100.8")
        return await asyncio.gather(*crowd, other, return_exceptions=True)

    try:
        first, second, third, other = asyncio.run(scenario())
    finally:
        service.close()
    assert isinstance(first, bytes) and isinstance(second, bytes)  # one ran, one waited
    assert isinstance(third, PoolBusy)
    assert isinstance(other, bytes)
