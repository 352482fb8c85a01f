"""The trace service behind the API: cache, per-client rate limit, dispatch to the pool."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import torch
from starlette.concurrency import run_in_threadpool

from app import __version__
from app.config import Settings
from app.errors import LimitExceeded
from app.export import BadStep, render
from app.layout import INSTALL_HINT, LayoutUnavailable, dot_available, layout_graph
from app.sandbox.pool import PoolBusy, WorkerPool
from app.schemas import ErrorDetail, Graph, LayoutRequest, RenderRequest, TraceRequest
from app.tracing import TraceFailure, limit_failure, trace_to_json

RETRY_AFTER_SECONDS = 2


class RateLimited(Exception):
    """A client sent more requests than its per-minute allowance."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many requests; retry in {retry_after} s")
        self.retry_after = retry_after


def request_key(request: TraceRequest) -> str:
    """Hash of everything that decides a trace's result."""
    material = json.dumps(
        [request.code, request.device, request.seed, __version__, torch.__version__]
    )
    return hashlib.sha256(material.encode()).hexdigest()


V = TypeVar("V")


class ResultCache(Generic[V]):
    """Least-recently-used values by key."""

    def __init__(self, entries: int) -> None:
        self.entries = entries
        self._items: OrderedDict[Any, V] = OrderedDict()

    def get(self, key: Any) -> V | None:
        """The cached value, refreshed as most recent."""
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: Any, value: V) -> None:
        """Remember a result, forgetting the oldest past the bound."""
        if self.entries <= 0:
            return
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.entries:
            self._items.popitem(last=False)


class RateLimiter:
    """Sliding one-minute window of request times per client."""

    def __init__(self, per_minute: int, limit_localhost: bool) -> None:
        self.per_minute = per_minute
        self.limit_localhost = limit_localhost
        self._seen: dict[str, deque[float]] = {}

    def check(self, client: str | None) -> None:
        """RateLimited when the client is over its allowance."""
        if self.per_minute <= 0 or client is None:
            return
        if not self.limit_localhost and _is_loopback(client):
            return
        now = time.monotonic()
        window = self._seen.setdefault(client, deque())
        while window and now - window[0] > 60:
            window.popleft()
        if len(window) >= self.per_minute:
            raise RateLimited(max(1, int(60 - (now - window[0])) + 1))
        window.append(now)
        if len(self._seen) > 10_000:  # forget idle clients
            for key in [k for k, v in self._seen.items() if not v or now - v[-1] > 60]:
                del self._seen[key]


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "testclient"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class _Flight:
    """A trace being run, and how many requests wait for it."""

    task: asyncio.Future[bytes]
    waiters: int = 0


class TraceService:
    """Runs traces for the API (in isolated workers, or in-process when isolation is off) and
    lays out their graphs."""

    def __init__(self, settings: Settings, pool: WorkerPool | None) -> None:
        self.settings = settings
        self.pool = pool
        self.cache: ResultCache[bytes] = ResultCache(settings.cache_entries)
        self.graphs: ResultCache[Graph] = ResultCache(max(2, settings.cache_entries // 4))
        self.layouts: ResultCache[bytes] = ResultCache(settings.cache_entries * 4)
        self.rate = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_localhost)
        self.programs_run = 0  # traces that ran a program (not served from the cache)
        self._flights: dict[str, _Flight] = {}  # traces running now, by request key

    async def trace(self, request: TraceRequest, client: str | None) -> bytes:
        """Graph JSON bytes with the default layout, or TraceFailure / PoolBusy / RateLimited."""
        size = len(request.code.encode("utf-8", "surrogatepass"))
        if size > self.settings.max_code_bytes:
            raise limit_failure(
                "code_bytes",
                f"the program is {size} bytes; the limit is {self.settings.max_code_bytes}",
            )
        key = request_key(request)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        flight = self._flights.get(key)
        if flight is None:  # the first asker runs it; identical requests meanwhile share the run
            self.rate.check(client)
            flight = _Flight(asyncio.ensure_future(self._run(request, key)))
            self._flights[key] = flight
            flight.task.add_done_callback(lambda _: self._land(key, flight))
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task)
        except asyncio.CancelledError:
            if flight.waiters == 1 and not flight.task.done():
                flight.task.cancel()  # nobody else waits: free the worker
            raise
        finally:
            flight.waiters -= 1

    def _land(self, key: str, flight: _Flight) -> None:
        if not flight.task.cancelled():
            flight.task.exception()  # a failure whose askers all left is not logged as lost
        if self._flights.get(key) is flight:
            del self._flights[key]

    async def _run(self, request: TraceRequest, key: str) -> bytes:
        """Run the program (a worker, or this process) and cache its laid-out Graph JSON."""
        self.programs_run += 1
        if self.pool is None:
            result = await run_in_threadpool(trace_to_json, request, self.settings)
        else:
            future = self.pool.submit(request)
            try:
                result = await asyncio.wrap_future(future)
            except asyncio.CancelledError:
                future.cancel()
                raise
        result = await run_in_threadpool(self._with_layout, result, key)
        self.cache.put(key, result)
        return result

    def _with_layout(self, payload: bytes, key: str) -> bytes:
        graph = Graph.model_validate_json(payload)
        self.graphs.put(key, graph)
        if not dot_available():
            graph.notes.append(INSTALL_HINT)
        else:
            try:
                graph.layout = layout_graph(graph, [])
            except LimitExceeded as exc:
                graph.notes.append(f"No layout: {exc.message}")
        return graph.model_dump_json().encode()

    @staticmethod
    def _program_of(request: TraceRequest) -> tuple[TraceRequest, str]:
        """The trace behind a layout or render request and its cache key (graphviz needed)."""
        if not dot_available():
            raise LayoutUnavailable(INSTALL_HINT)
        trace_request = TraceRequest(code=request.code, device=request.device, seed=request.seed)
        return trace_request, request_key(trace_request)

    async def _graph(self, request: TraceRequest, key: str, client: str | None) -> Graph:
        """The recorded Graph of a request: parsed and cached, traced when not seen yet."""
        graph = self.graphs.get(key)
        if graph is None:
            payload = await self.trace(request, client)
            graph = self.graphs.get(key)
            if graph is None:  # the bytes came from the cache; the parsed graph was evicted
                graph = await run_in_threadpool(Graph.model_validate_json, payload)
                self.graphs.put(key, graph)
        return graph

    async def layout(self, request: LayoutRequest, client: str | None) -> bytes:
        """Layout JSON bytes of the program's graph with the given modules expanded."""
        trace_request, key = self._program_of(request)
        layout_key = (key, tuple(sorted(set(request.expanded))))
        cached = self.layouts.get(layout_key)
        if cached is not None:
            return cached
        graph = await self._graph(trace_request, key, client)
        try:
            layout = await run_in_threadpool(layout_graph, graph, request.expanded)
        except LimitExceeded as exc:
            raise limit_failure(exc.limit, exc.message) from None
        result = layout.model_dump_json().encode()
        self.layouts.put(layout_key, result)
        return result

    async def render(self, request: RenderRequest, client: str | None) -> bytes:
        """Export bytes of the program's graph in the requested format, view and step."""
        trace_request, key = self._program_of(request)
        graph = await self._graph(trace_request, key, client)
        try:
            return await run_in_threadpool(
                render,
                graph,
                request.format,
                request.expanded,
                request.step,
                request.theme,
                request.lang,
            )
        except BadStep as exc:
            raise TraceFailure(400, ErrorDetail(type="BadStep", message=str(exc))) from None
        except LimitExceeded as exc:
            raise limit_failure(exc.limit, exc.message) from None

    def layers(self) -> dict[str, bool]:
        """Which isolation layers are active."""
        if self.pool is None:
            return {
                "language_policy": self.settings.language_layer,
                "jail": False,
                "fresh_process": False,
            }
        return dict(self.pool.layers)


__all__ = [
    "ErrorDetail",
    "LayoutUnavailable",
    "PoolBusy",
    "RateLimited",
    "TraceFailure",
    "TraceService",
]
