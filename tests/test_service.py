"""The trace service: shared runs of identical requests, a cache partitioned by client,
byte-bounded caches, cached and rate-limited renders, bounded answers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.client_identity import Client
from app.config import Settings
from app.errors import TraceFailure
from app.lessons import get_lesson
from app.main import create_app
from app.schemas import TraceRequest
from app.service import RateLimited, ResultCache, TraceService
from tests.conftest import SAFE_PROGRAM, w_grad


def service(**settings: object) -> TraceService:
    return TraceService(Settings(isolation=False, **settings), pool=None)


def test_a_burst_of_identical_requests_runs_the_program_once() -> None:
    traces = service()
    client = Client("10.0.0.1", "s")

    async def burst() -> list[bytes]:
        same = [traces.trace(TraceRequest(code=SAFE_PROGRAM), client) for i in range(6)]
        other = traces.trace(TraceRequest(code=SAFE_PROGRAM, seed=1), client)
        return await asyncio.gather(*same, other)

    answers = asyncio.run(burst())
    assert traces.programs_run == 2
    assert len(set(answers[:6])) == 1 and all(w_grad(json.loads(a)) == [5.0] for a in answers)
    assert traces._flights == {}


def test_a_shared_failure_reaches_every_asker() -> None:
    traces = service(allow_cuda=False)

    async def burst() -> list[object]:
        asks = [
            traces.trace(TraceRequest(code=SAFE_PROGRAM, device="cuda"), None) for _ in range(3)
        ]
        return await asyncio.gather(*asks, return_exceptions=True)

    failures = asyncio.run(burst())
    assert traces.programs_run == 1
    assert all(isinstance(f, TraceFailure) and f.status == 400 for f in failures)


def test_every_request_counts_against_the_rate_limit_a_shared_run_too() -> None:
    traces = service(rate_limit_per_minute=1)
    client = Client("10.0.0.1", "s")

    async def burst() -> list[object]:
        asks = (traces.trace(TraceRequest(code=SAFE_PROGRAM), client) for _ in range(3))
        return await asyncio.gather(*asks, return_exceptions=True)

    first, *others = asyncio.run(burst())
    assert isinstance(first, bytes) and all(isinstance(o, RateLimited) for o in others)


def test_one_client_cannot_learn_from_the_cache_what_another_ran() -> None:
    traces = service()
    alice, bob = Client("10.0.0.1", "alice"), Client("10.0.0.1", "bob")
    secret = TraceRequest(code=SAFE_PROGRAM + "secret = 42\n")

    async def ask(request: TraceRequest, client: Client) -> bytes:
        return await traces.trace(request, client)

    asyncio.run(ask(secret, alice))
    asyncio.run(ask(secret, alice))
    assert traces.programs_run == 1  # alice's own answer comes from her cache
    asyncio.run(ask(secret, bob))
    assert traces.programs_run == 2  # bob's is run for him: no hit tells him alice ran it
    asyncio.run(ask(secret, Client("10.0.0.2")))
    assert traces.programs_run == 3


def test_gallery_programs_are_public_and_shared_by_every_client() -> None:
    traces = service()
    gallery = TraceRequest(code=get_lesson("shared_weight").code)
    for client in (Client("10.0.0.1", "alice"), Client("10.0.0.1", "bob"), Client("10.0.0.2")):
        asyncio.run(traces.trace(gallery, client))
    assert traces.programs_run == 1


def test_a_lone_asker_that_leaves_cancels_the_run() -> None:
    traces = service()

    async def leave() -> bool:
        ask = asyncio.ensure_future(traces.trace(TraceRequest(code=SAFE_PROGRAM), None))
        await asyncio.sleep(0)  # the run has started
        (flight,) = traces._flights.values()
        ask.cancel()
        with pytest.raises(asyncio.CancelledError):
            await ask
        with pytest.raises(asyncio.CancelledError):
            await flight.task
        return flight.task.cancelled()

    assert asyncio.run(leave())


dot_needed = pytest.mark.skipif(
    __import__("shutil").which("dot") is None, reason="graphviz dot is not installed"
)


def test_cache_is_bounded_in_bytes() -> None:
    cache: ResultCache[bytes] = ResultCache(entries=100, max_bytes=1000)
    for i in range(5):
        cache.put(i, b"x" * 300, 300)
    assert cache.bytes <= 1000 and len(cache) == 3
    assert cache.get(0) is None and cache.get(4) == b"x" * 300
    cache.put("big", b"y" * 2000, 2000)  # larger than the whole cache: not kept
    assert cache.get("big") is None and len(cache) == 3
    cache.put(4, b"z", 1)  # replacing an entry frees its old size
    assert cache.bytes == 601 and cache.get(4) == b"z"


def test_cache_is_bounded_in_entries() -> None:
    cache: ResultCache[bytes] = ResultCache(entries=2, max_bytes=10**9)
    for i in range(4):
        cache.put(i, b"v", 1)
    assert [cache.get(i) for i in range(4)] == [None, None, b"v", b"v"]


def in_process_client(**overrides: object) -> Iterator[TestClient]:
    settings = Settings(isolation=False, wall_seconds=10, cpu_seconds=10, **overrides)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def limited() -> Iterator[TestClient]:
    """In-process traces, three requests a minute per client (the test client too)."""
    yield from in_process_client(rate_limit_per_minute=3, rate_limit_localhost=True)


@dot_needed
def test_renders_are_cached_and_count_against_the_rate_limit(limited: TestClient) -> None:
    service = limited.app.state.service
    assert limited.post("/api/v1/trace", json={"code": SAFE_PROGRAM}).status_code == 200
    body = {"code": SAFE_PROGRAM, "format": "svg"}
    first = limited.post("/api/v1/render", json=body)
    made = service.exports_made
    again = limited.post("/api/v1/render", json=body)
    assert first.status_code == again.status_code == 200 and again.content == first.content
    assert service.exports_made == made  # the second came from the cache, not from graphviz
    refused = limited.post("/api/v1/render", json=body)  # a cache hit counts as well
    assert refused.status_code == 429 and refused.json()["detail"]["type"] == "RateLimited"
    assert int(refused.headers["Retry-After"]) >= 1
    assert limited.post("/api/v1/trace", json={"code": SAFE_PROGRAM}).status_code == 429


@pytest.fixture
def small_answers() -> Iterator[TestClient]:
    yield from in_process_client(max_response_bytes=6000)


def test_a_graph_over_the_response_cap_is_summarised_an_export_is_422(
    small_answers: TestClient,
) -> None:
    response = small_answers.post("/api/v1/trace", json={"code": SAFE_PROGRAM})
    assert response.status_code == 200 and len(response.content) <= 6000
    graph = response.json()
    keys = [m["key"] for m in graph["messages"]]
    assert keys[0] == "responseValuesSummarised" and graph["nodes"]
    assert all(n["value"]["values"] is None for n in graph["nodes"] if n["kind"] == "tensor")
    export = small_answers.post("/api/v1/render", json={"code": SAFE_PROGRAM, "format": "html"})
    assert export.status_code == 422
    assert export.json()["detail"]["limit"] == "response_bytes"


def test_default_response_cap_is_well_under_48_mb() -> None:
    assert Settings().max_response_bytes <= 16 * 1024 * 1024
