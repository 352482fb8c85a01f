"""Per-client caps: per session two run, a few wait, the rest get 503; per address a ceiling;
layouts and exports take a slot too."""

from __future__ import annotations

import asyncio
import threading

import pytest

from app.client_identity import Client
from app.client_slots import ClientSlots
from app.config import Settings
from app.sandbox.pool import PoolBusy
from app.schemas import LayoutRequest, RenderRequest, TraceRequest
from app.service import TraceService


def test_slots_queue_then_refuse_and_free_up() -> None:
    async def scenario() -> None:
        slots = ClientSlots(in_flight=2, queued=1)
        a, b = Client("192.0.2.1", "a"), Client("192.0.2.1", "b")
        await slots.acquire(a)
        await slots.acquire(a)
        waiting = asyncio.ensure_future(slots.acquire(a))
        await asyncio.sleep(0)
        assert not waiting.done() and slots.active(a) == 3
        with pytest.raises(PoolBusy, match="2 running and 1 waiting"):
            await slots.acquire(a)
        await slots.acquire(b)  # another session of the same address is not held up
        slots.release(a)
        await waiting
        slots.release(a)
        slots.release(a)
        slots.release(b)
        assert slots.active(a) == 0 and slots.active(b) == 0
        assert slots.from_address("192.0.2.1") == 0

    asyncio.run(scenario())


# In-process programs (isolation off) share this interpreter: the held one waits on these events.
STARTED = threading.Event()
RELEASE = threading.Event()
HELD = (
    "from tests.test_client_slots import RELEASE, STARTED\n"
    "STARTED.set()\n"
    "RELEASE.wait(120)\n"
    "import torch\n"
    "x = torch.ones(1, requires_grad=True)\n"
)


def test_a_client_past_its_queue_gets_busy_while_others_are_served() -> None:
    settings = Settings(
        isolation=False, language_layer=False, client_in_flight=1, client_queue=1, cache_entries=0
    )
    service = TraceService(settings, None)
    STARTED.clear()
    RELEASE.clear()

    async def scenario() -> tuple[object, ...]:
        crowd = Client("198.51.100.7")
        first = asyncio.ensure_future(service.trace(TraceRequest(code=HELD, seed=1), crowd))
        await asyncio.to_thread(STARTED.wait, 120)  # the first runs, holding the client's slot
        second = asyncio.ensure_future(service.trace(TraceRequest(code=HELD, seed=2), crowd))
        await asyncio.sleep(0)  # the second takes the one place in the queue
        third = await asyncio.gather(
            service.trace(TraceRequest(code=HELD, seed=3), crowd), return_exceptions=True
        )
        # another client is not refused (in-process, recordings run one at a time)
        other = asyncio.ensure_future(
            service.trace(TraceRequest(code="x = 1\n"), Client("198.51.100.8"))
        )
        await asyncio.sleep(0)
        RELEASE.set()
        return (await first, await second, third[0], await other)

    try:
        first, second, third, other = asyncio.run(scenario())
    finally:
        RELEASE.set()
        service.close()
    assert isinstance(first, bytes) and isinstance(second, bytes)  # one ran, one waited
    assert isinstance(third, PoolBusy)
    assert isinstance(other, bytes)


def test_a_hundred_sessions_behind_one_address_fit_under_its_ceiling() -> None:
    async def scenario() -> None:
        slots = ClientSlots(in_flight=2, queued=4, per_address=200)
        students = [Client("203.0.113.9", f"student-{i}") for i in range(100)]
        for student in students:  # each of a class of 100 has two requests running
            await slots.acquire(student)
            await slots.acquire(student)
        assert slots.from_address("203.0.113.9") == 200
        with pytest.raises(PoolBusy, match="this address already has 200"):
            await slots.acquire(Client("203.0.113.9", "one-more"))
        await slots.acquire(Client("198.51.100.1", "elsewhere"))  # other addresses are served
        slots.release(students[0])
        await slots.acquire(Client("203.0.113.9", "one-more"))

    asyncio.run(scenario())


def test_layouts_and_exports_take_the_clients_slot() -> None:
    settings = Settings(isolation=False, client_in_flight=1, client_queue=0, cache_entries=0)
    service = TraceService(settings, None)
    client = Client("198.51.100.7", "s")

    async def scenario() -> tuple[object, int]:
        await service.slots.acquire(client)  # something of this client is running
        layout = LayoutRequest(code="import torch\nx = torch.ones(1, requires_grad=True)\n")
        refused = await asyncio.gather(service.layout(layout, client), return_exceptions=True)
        render = RenderRequest(code=layout.code, format="dot")
        refused += await asyncio.gather(service.render(render, client), return_exceptions=True)
        service.slots.release(client)
        answer = await service.layout(layout, client)
        return refused, len(answer)

    try:
        refused, size = asyncio.run(scenario())
    finally:
        service.close()
    assert all(isinstance(r, PoolBusy) for r in refused) and len(refused) == 2
    assert size > 0
