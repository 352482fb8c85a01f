"""A cap on the requests one client has in flight: past it they queue, past the queue 503."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from app.sandbox.pool import PoolBusy


@dataclass
class _Client:
    slots: asyncio.Semaphore
    holding_or_waiting: int = 0
    held: set[int] = field(default_factory=set)


class ClientSlots:
    """Per-client slots: `in_flight` run at once, `queued` more wait, the rest are refused."""

    def __init__(self, in_flight: int, queued: int) -> None:
        self.in_flight = in_flight
        self.queued = queued
        self._clients: dict[str, _Client] = {}

    async def acquire(self, client: str | None) -> None:
        """Take one of the client's slots, waiting in its queue; PoolBusy when that is full."""
        if self.in_flight <= 0 or client is None:
            return
        state = self._clients.get(client)
        if state is None:
            state = self._clients[client] = _Client(asyncio.Semaphore(self.in_flight))
        if state.holding_or_waiting >= self.in_flight + self.queued:
            raise PoolBusy(
                f"this client already has {state.holding_or_waiting} requests running or "
                f"waiting (the limit is {self.in_flight} running and {self.queued} waiting)"
            )
        state.holding_or_waiting += 1
        try:
            await state.slots.acquire()
        except BaseException:
            self._leave(client, state)
            raise

    def release(self, client: str | None) -> None:
        """Give a slot back."""
        if self.in_flight <= 0 or client is None:
            return
        state = self._clients.get(client)
        if state is not None:
            state.slots.release()
            self._leave(client, state)

    def _leave(self, client: str, state: _Client) -> None:
        state.holding_or_waiting -= 1
        if state.holding_or_waiting <= 0:
            del self._clients[client]

    def active(self, client: str) -> int:
        """Requests of a client running or waiting now."""
        state = self._clients.get(client)
        return state.holding_or_waiting if state else 0
