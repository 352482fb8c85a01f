"""Caps on the requests one client has in flight: per session (past them they queue, past the
queue 503), under a ceiling for each address that a lecture hall behind one NAT fits."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass

from app.client_identity import Client
from app.sandbox.pool import PoolBusy


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
