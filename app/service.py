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
from app.client_slots import ClientSlots
from app.config import Settings
from app.errors import LimitExceeded
from app.export import BadStep
from app.graph_budget import refit
from app.graph_jobs import BIG_GRAPH_BYTES, GraphHelper, do_job, unpack
from app.json_text import has_lone_surrogate
from app.layout import (
    INSTALL_HINT,
    DotFailed,
    DotLimits,
    LayoutBusy,
    LayoutUnavailable,
    dot_available,
)
from app.sandbox.policy import check_size
from app.sandbox.pool import PoolBusy, WorkerPool
from app.schemas import (
    ErrorDetail,
    Graph,
    LayoutRequest,
    RenderRequest,
    TraceRequest,
)
from app.tracing import TraceFailure, limit_failure, limits_from, trace_to_json

RETRY_AFTER_SECONDS = 2
REFITS = 3  # tries at a graph small enough to stay under the answer's limit with its layout


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
    """Least-recently-used values by key, bounded in entries and in bytes."""

    def __init__(self, entries: int, max_bytes: int) -> None:
        self.entries = entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[Any, tuple[V, int]] = OrderedDict()

    def get(self, key: Any) -> V | None:
        """The cached value, refreshed as most recent."""
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        return item[0]

    def put(self, key: Any, value: V, size: int) -> None:
        """Remember a result of about size bytes, forgetting the oldest past either bound."""
        if self.entries <= 0 or size > self.max_bytes:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self.bytes -= old[1]
        self._items[key] = (value, size)
        self.bytes += size
        while len(self._items) > self.entries or self.bytes > self.max_bytes:
            _, (_, dropped) = self._items.popitem(last=False)
            self.bytes -= dropped

    def __len__(self) -> int:
        return len(self._items)


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


PARSED_GRAPH_WEIGHT = 10  # a parsed Graph takes about ten times the memory of its JSON


@dataclass
class _Flight:
    """A trace being run, and how many requests wait for it."""

    task: asyncio.Future[bytes]
    waiters: int = 0


class TraceService:
    """Runs traces for the API (in isolated workers, or in-process when isolation is off) and
    lays out and exports their graphs, caching each result and bounding the work."""

    def __init__(self, settings: Settings, pool: WorkerPool | None) -> None:
        self.settings = settings
        self.pool = pool
        entries, max_bytes = settings.cache_entries, settings.cache_mb * 1024 * 1024
        self.cache: ResultCache[bytes] = ResultCache(entries, max_bytes)
        self.graphs: ResultCache[Graph] = ResultCache(max(2, entries // 4), max_bytes)
        self.layouts: ResultCache[bytes] = ResultCache(entries, max_bytes)
        self.rate = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_localhost)
        self.dot_limits = DotLimits(
            seconds=settings.layout_seconds,
            memory_mb=settings.layout_memory_mb,
            max_edges=settings.layout_max_edges,
        )
        self.programs_run = 0  # traces that ran a program (not served from the cache)
        self.exports_made = 0  # layouts and exports that ran graphviz (not from the cache)
        self.helper = GraphHelper()
        self._flights: dict[str, _Flight] = {}  # traces running now, by request key
        self.slots = ClientSlots(settings.client_in_flight, settings.client_queue)

    def _capped(self, client: str | None) -> bool:
        """Whether the per-client cap applies (loopback is exempt, as for the rate limit)."""
        return client is not None and (
            self.settings.rate_limit_localhost or not _is_loopback(client)
        )

    async def trace(self, request: TraceRequest, client: str | None) -> bytes:
        """Graph JSON bytes with the default layout, or TraceFailure / PoolBusy / RateLimited."""
        return await self._answer(request, self._checked_key(request), client)

    async def _answer(
        self, request: TraceRequest, key: str, client: str | None, counted: bool = True
    ) -> bytes:
        """The cached answer, or a run shared by identical requests that arrive meanwhile
        (only the first asker counts against the rate limit, when counted)."""
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        flight = self._flights.get(key)
        if flight is None:  # the first asker runs it; identical requests meanwhile share the run
            if counted:
                self.rate.check(client)
            holder = client if self._capped(client) else None
            await self.slots.acquire(holder)
            flight = self._flights.get(key)  # an identical request may have started meanwhile
            if flight is not None:
                self.slots.release(holder)
            else:
                flight = _Flight(asyncio.ensure_future(self._run(request, key)))
                self._flights[key] = flight
                flight.task.add_done_callback(
                    lambda _, f=flight, h=holder: (self._land(key, f), self.slots.release(h))
                )
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

    def _checked_key(self, request: TraceRequest, texts: tuple[str, ...] = ()) -> str:
        """The request's cache key once its text is valid and its code within the size limit."""
        for field, text in (("code", request.code), *(("expanded", t) for t in texts)):
            if has_lone_surrogate(text):
                raise TraceFailure(
                    400,
                    ErrorDetail(
                        type="BadRequest",
                        message=f"the {field} holds a lone UTF-16 surrogate (such as \\ud800), "
                        "which is not text: send valid Unicode",
                    ),
                )
        try:  # the worker's own size check, before any work is queued
            check_size(request.code, limits_from(self.settings))
        except LimitExceeded as exc:
            raise limit_failure(exc.limit, exc.message) from None
        return request_key(request)

    async def _run(self, request: TraceRequest, key: str) -> bytes:
        """Run the program (not cached yet), lay its graph out and cache the answer."""
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
        answer, complete = await self._on_graph("trace", result, key, (self.dot_limits,))
        for _ in range(REFITS):  # badges and layout made it too large: a smaller graph again
            if len(answer) <= self.settings.max_response_bytes:
                break
            share = self.settings.max_response_bytes / len(answer)
            refitted = await run_in_threadpool(refit, result, int(len(result) * share * 0.9))
            if refitted is None:
                break
            result = refitted
            answer, complete = await self._on_graph("trace", result, key, (self.dot_limits,))
        result = answer
        self._check_size(len(result))
        if complete:  # a layout skipped only because graphviz was busy is tried again later
            self.cache.put(key, result, len(result))
        return result

    async def _on_graph(self, job: str, payload: bytes, key: str, args: tuple[Any, ...]) -> Any:
        """Run a graph job: on the cached parse in a thread, or for a big graph in the helper
        process, so that no parse of megabytes holds up the event loop."""
        if len(payload) > BIG_GRAPH_BYTES:
            future = self.helper.submit(job, payload, args)
            return unpack(await asyncio.wrap_future(future))
        return await run_in_threadpool(self._job_here, job, payload, key, args)

    def _job_here(self, job: str, payload: bytes, key: str, args: tuple[Any, ...]) -> Any:
        graph = None if job == "trace" else self.graphs.get(key)
        if graph is None:
            graph = Graph.model_validate_json(payload)
            self.graphs.put(key, graph, len(payload) * PARSED_GRAPH_WEIGHT)
        return do_job(graph, job, args)

    def _check_size(self, size: int) -> None:
        if size > self.settings.max_response_bytes:
            raise limit_failure(
                "response_bytes",
                f"the answer is {size} bytes, over the limit of "
                f"{self.settings.max_response_bytes}: collapse modules or trace less",
            )

    def _program_of(self, request: LayoutRequest | RenderRequest) -> tuple[TraceRequest, str]:
        """The trace behind a layout or render request and its cache key (graphviz needed)."""
        if not dot_available():
            raise LayoutUnavailable(INSTALL_HINT)
        trace_request = TraceRequest(code=request.code, device=request.device, seed=request.seed)
        return trace_request, self._checked_key(trace_request, tuple(request.expanded))

    async def _graphviz(self, job: str, request: TraceRequest, key: str, *args: Any) -> bytes:
        """A layout or an export of the request's graph (traced first when not cached), its
        failures as API errors."""
        payload = await self._answer(request, key, None, counted=False)  # counted by the caller
        self.exports_made += 1
        try:
            result = await self._on_graph(job, payload, key, (*args, self.dot_limits))
        except BadStep as exc:
            raise TraceFailure(400, ErrorDetail(type="BadStep", message=str(exc))) from None
        except LimitExceeded as exc:
            raise limit_failure(exc.limit, exc.message) from None
        except DotFailed as exc:
            raise TraceFailure(422, ErrorDetail(type="LayoutFailed", message=str(exc))) from None
        self._check_size(len(result))
        return result

    async def layout(self, request: LayoutRequest, client: str | None) -> bytes:
        """Layout JSON bytes of the program's graph with the given modules expanded."""
        trace_request, key = self._program_of(request)
        layout_key = (key, "layout", tuple(sorted(set(request.expanded))), request.pass_index)
        cached = self.layouts.get(layout_key)
        if cached is not None:
            return cached
        self.rate.check(client)
        result = await self._graphviz(
            "layout", trace_request, key, request.expanded, request.pass_index
        )
        self.layouts.put(layout_key, result, len(result))
        return result

    async def render(self, request: RenderRequest, client: str | None) -> bytes:
        """Export bytes of the program's graph in the requested format, view and step."""
        trace_request, key = self._program_of(request)
        view = (request.format, request.step, request.theme, request.lang)
        render_key = (key, "render", *view, tuple(sorted(set(request.expanded))))
        cached = self.layouts.get(render_key)
        if cached is not None:
            return cached
        self.rate.check(client)
        result = await self._graphviz(
            "render", trace_request, key, request.format, request.expanded, *view[1:]
        )
        self.layouts.put(render_key, result, len(result))
        return result

    def close(self) -> None:
        """Stop the helper process of big graphs."""
        self.helper.close()

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
    "LayoutBusy",
    "LayoutUnavailable",
    "PoolBusy",
    "RateLimited",
    "TraceFailure",
    "TraceService",
]
