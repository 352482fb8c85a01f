"""The trace service behind the API: cache, per-client caps and rate limit, dispatch to the pool."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch
from starlette.concurrency import run_in_threadpool

from app import __version__
from app.answer_cache import AnswerCache, MemoryAnswers, RedisAnswers, ResultCache
from app.client_identity import Client
from app.client_slots import ClientSlots, RedisClientSlots
from app.config import Settings
from app.deck import DECK_FORMATS, DeckOptions
from app.dot_run import (
    INSTALL_HINT,
    DotFailed,
    LayoutBusy,
    LayoutUnavailable,
    dot_available,
)
from app.errors import BadAnswer, LimitExceeded, TraceFailure, failure, limit_failure
from app.export import BadStep
from app.graph_budget import refit
from app.graph_jobs import BIG_GRAPH_BYTES, GraphBounds, GraphHelper, do_job, read_graph, unpack
from app.json_text import has_lone_surrogate
from app.lessons import all_lessons
from app.rate_limits import (
    RateLimited,
    RateLimiter,
    RateLimits,
    RedisRateLimiter,
    is_loopback,
)
from app.recorder import most_passes
from app.sandbox.policy import check_size
from app.sandbox.pool import PoolBusy, WorkerParentHandle
from app.schemas import (
    ErrorDetail,
    Graph,
    LayoutRequest,
    RenderRequest,
    TraceRequest,
)
from app.shared_state import RedisLink, SharedMode
from app.step_caption import lesson_of, narration_for
from app.tracing import trace_to_json

RETRY_AFTER_SECONDS = 2
log = logging.getLogger("autograd_explorer.service")
REFITS = 3  # tries at a graph small enough to stay under the answer's limit with its layout


def request_key(request: TraceRequest, partition: str = "") -> str:
    """Hash of everything that decides a trace's result, within a cache partition."""
    material = json.dumps(
        [
            partition,
            request.code,
            request.device,
            request.seed,
            request.values,
            __version__,
            torch.__version__,
        ]
    )
    return hashlib.sha256(material.encode()).hexdigest()


@lru_cache(maxsize=1)
def gallery_code() -> frozenset[str]:
    """The code of every gallery program: public, so its answers are shared by all clients."""
    return frozenset(example.code for example in all_lessons())


def cache_partition(request: TraceRequest, client: Client | None) -> str:
    """Whose answers a request may be served from: its own client's, or everyone's for a
    gallery program. A shared cache would tell one client, by how fast it answers, which
    programs others have run."""
    if client is None or client.key is None or request.code in gallery_code():
        return ""
    return client.key


def _bad_graph(why: str) -> TraceFailure:
    return failure("BadAnswer", f"the recorded graph cannot be used: {why}")


PARSED_GRAPH_WEIGHT = 10  # a parsed Graph takes about ten times the memory of its JSON


@dataclass
class _Flight:
    """A trace being run, and how many requests wait for it."""

    task: asyncio.Future[bytes]
    waiters: int = 0


class TraceService:
    """Runs traces for the API (in isolated workers, or in-process when isolation is off) and
    lays out and exports their graphs, caching each result and bounding the work."""

    def __init__(
        self, settings: Settings, pool: WorkerParentHandle | None, shared: RedisLink | None = None
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.shared = shared  # None: caches, caps and rate limits live in this process only
        entries, max_bytes = settings.cache_entries, settings.cache_mb * 1024 * 1024
        self.cache: ResultCache[bytes] = ResultCache(entries, max_bytes)
        self.graphs: ResultCache[Graph] = ResultCache(max(2, entries // 4), max_bytes)
        self.layouts: ResultCache[bytes] = ResultCache(entries, max_bytes)
        rate = RateLimiter(
            settings.rate_limit_per_minute,
            settings.rate_limit_localhost,
            per_address=settings.address_rate_limit_per_minute,
        )
        slots = ClientSlots(
            settings.client_in_flight, settings.client_queue, settings.address_requests
        )
        self.answers: AnswerCache = MemoryAnswers(self.cache)
        self.rate: RateLimits = rate
        self.slots: ClientSlots | RedisClientSlots = slots
        if shared is not None:
            self.answers = RedisAnswers(self.cache, shared)
            self.rate = RedisRateLimiter(rate, shared)
            self.slots = RedisClientSlots(slots, shared)
        self.dot_limits = settings.dot_limits()
        self.programs_run = 0  # traces that ran a program (not served from the cache)
        self.exports_made = 0  # layouts and exports that ran graphviz (not from the cache)
        self.helper = GraphHelper()
        self.bounds = GraphBounds(settings.max_nodes, most_passes(settings.max_passes))
        self._flights: dict[str, _Flight] = {}  # traces running now, by request key

    @property
    def shared_mode(self) -> SharedMode:
        """Where caches, caps and rate limits live: this process ('memory'), Redis, or this
        process for now because Redis is gone ('degraded')."""
        return "memory" if self.shared is None else self.shared.mode

    def _holder(self, client: Client | None) -> Client | None:
        """The client whose slot a request takes (None where loopback is exempt, as for the
        rate limit)."""
        if client is None or client.address is None:
            return client
        capped = self.settings.rate_limit_localhost or not is_loopback(client.address)
        return client if capped else None

    async def trace(self, request: TraceRequest, client: Client | None) -> bytes:
        """Graph JSON bytes with the default layout, or TraceFailure / PoolBusy / RateLimited."""
        key = self._checked_key(request, client)
        await self.rate.check(client)  # every request counts, an answer from the cache too
        return await self._answer(request, key, self._holder(client))

    async def _answer(self, request: TraceRequest, key: str, holder: Client | None) -> bytes:
        """The cached answer, or a run shared by identical requests that arrive meanwhile (the
        first asker's holder takes a slot for it; None: the caller holds one already)."""
        cached = await self.answers.get(key)
        if cached is not None:
            return cached
        flight = self._flights.get(key)
        if flight is None:  # the first asker runs it; identical requests meanwhile share the run
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

    def _checked_key(
        self, request: TraceRequest, client: Client | None, texts: tuple[str, ...] = ()
    ) -> str:
        """The request's cache key (in its client's partition) once its text is valid and its
        code within the size limit."""
        for field, text in (("code", request.code), *(("expanded", t) for t in texts)):
            if has_lone_surrogate(text):
                raise failure(
                    "BadRequest",
                    f"the {field} holds a lone UTF-16 surrogate (such as \\ud800), "
                    "which is not text: send valid Unicode",
                )
        try:  # the worker's own size check, before any work is queued
            check_size(request.code, self.settings.policy_limits())
        except LimitExceeded as exc:
            raise limit_failure(exc.limit, exc.message) from None
        return request_key(request, cache_partition(request, client))

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
            await self.answers.put(key, result)
        return result

    async def _on_graph(self, job: str, payload: bytes, key: str, args: tuple[Any, ...]) -> Any:
        """Run a graph job: on the cached parse in a thread, or for a big graph in the helper
        process, so that no parse of megabytes holds up the event loop. A graph that breaks a
        job is a 422 BadAnswer (a worker's program may have written it), never a 500."""
        try:
            if len(payload) > BIG_GRAPH_BYTES:
                future = self.helper.submit(job, payload, args, self.bounds)
                return unpack(await asyncio.wrap_future(future))
            return await run_in_threadpool(self._job_here, job, payload, key, args)
        except (BadStep, LimitExceeded, DotFailed, LayoutBusy, LayoutUnavailable):
            raise
        except concurrent.futures.BrokenExecutor:  # the helper died; the next job starts one
            raise failure("Unavailable", "the graph helper stopped; retry") from None
        except BadAnswer as exc:
            raise _bad_graph(str(exc)) from None
        except Exception as exc:
            log.error("the %s job failed on a recorded graph: %r", job, exc)
            raise _bad_graph(f"{type(exc).__name__} in the {job} job") from None

    def _job_here(self, job: str, payload: bytes, key: str, args: tuple[Any, ...]) -> Any:
        graph = None if job == "trace" else self.graphs.get(key)
        if graph is None:
            graph = read_graph(payload, self.bounds)
            self.graphs.put(key, graph, len(payload) * PARSED_GRAPH_WEIGHT)
        return do_job(graph, job, args)

    def _check_size(self, size: int) -> None:
        if size > self.settings.max_response_bytes:
            raise limit_failure(
                "response_bytes",
                f"the answer is {size} bytes, over the limit of "
                f"{self.settings.max_response_bytes}: collapse modules or trace less",
            )

    def _program_of(
        self, request: LayoutRequest | RenderRequest, client: Client | None
    ) -> tuple[TraceRequest, str]:
        """The trace behind a layout or render request and its cache key (graphviz needed)."""
        if not dot_available():
            raise LayoutUnavailable(INSTALL_HINT)
        trace_request = TraceRequest(
            code=request.code, device=request.device, seed=request.seed, values=request.values
        )
        return trace_request, self._checked_key(trace_request, client, tuple(request.expanded))

    async def _graphviz(
        self, job: str, request: TraceRequest, key: str, client: Client | None, *args: Any
    ) -> bytes:
        """A layout or an export of the request's graph (traced first when not cached), its
        failures as API errors; the client's slot is held for the trace and graphviz both."""
        holder = self._holder(client)
        await self.slots.acquire(holder)
        try:
            return await self._graphviz_in_slot(job, request, key, *args)
        finally:
            self.slots.release(holder)

    async def _graphviz_in_slot(
        self, job: str, request: TraceRequest, key: str, *args: Any
    ) -> bytes:
        payload = await self._answer(request, key, None)  # the caller holds the slot
        self.exports_made += 1
        try:
            result = await self._on_graph(job, payload, key, (*args, self.dot_limits))
        except BadStep as exc:
            raise failure("BadStep", str(exc)) from None
        except LimitExceeded as exc:
            raise limit_failure(exc.limit, exc.message) from None
        except DotFailed as exc:
            raise failure("LayoutFailed", str(exc)) from None
        self._check_size(len(result))
        return result

    async def layout(self, request: LayoutRequest, client: Client | None) -> bytes:
        """Layout JSON bytes of the program's graph with the given modules expanded."""
        trace_request, key = self._program_of(request, client)
        await self.rate.check(client)
        aspect = round(request.aspect, 1)  # frames of nearly one shape share a layout
        wanted = request.view_expanded()  # '*' and a depth are resolved against the graph
        expanded = tuple(sorted(set(wanted)))
        layout_key = (key, "layout", expanded, request.pass_index, aspect)
        cached = self.layouts.get(layout_key)
        if cached is not None:
            return cached
        result = await self._graphviz(
            "layout", trace_request, key, client, wanted, request.pass_index, aspect
        )
        self.layouts.put(layout_key, result, len(result))
        return result

    async def render(self, request: RenderRequest, client: Client | None) -> bytes:
        """Export bytes of the program's graph in the requested format, view and step: a
        still, or a deck of every step (PDF, PPTX, GIF, MP4) within the page cap."""
        trace_request, key = self._program_of(request, client)
        await self.rate.check(client)
        view = (request.format, request.step, request.theme, request.lang)
        deck = (request.steps, request.aspect, request.seconds, request.name)
        render_key = (key, "render", *view, *deck, tuple(sorted(set(request.expanded))))
        cached = self.layouts.get(render_key)
        if cached is not None:
            return cached
        narration = narration_for(request.code)
        if request.format in DECK_FORMATS:
            options = DeckOptions(
                format=request.format,
                steps=request.steps,
                theme=request.theme,
                lang=request.lang,
                expanded=tuple(request.expanded),
                aspect=request.aspect,
                seconds=request.seconds,
                title=lesson_of(request.code) or request.name or "",
                max_pages=self.settings.max_deck_pages,
            )
            result = await self._graphviz("deck", trace_request, key, client, options, narration)
        else:
            result = await self._graphviz(
                "render",
                trace_request,
                key,
                client,
                request.format,
                request.expanded,
                *view[1:],
                narration,
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
    "RateLimiter",
    "ResultCache",
    "LayoutBusy",
    "LayoutUnavailable",
    "PoolBusy",
    "RateLimited",
    "TraceFailure",
    "TraceService",
]
