"""The trace service: identical requests that arrive together share one run."""

from __future__ import annotations

import asyncio
import json

import pytest

from app.config import Settings
from app.schemas import TraceRequest
from app.service import TraceService
from app.tracing import TraceFailure
from tests.conftest import SAFE_PROGRAM, w_grad


def service(**settings: object) -> TraceService:
    return TraceService(Settings(isolation=False, **settings), pool=None)


def test_a_burst_of_identical_requests_runs_the_program_once() -> None:
    traces = service()

    async def burst() -> list[bytes]:
        same = [traces.trace(TraceRequest(code=SAFE_PROGRAM), f"10.0.0.{i}") for i in range(6)]
        other = traces.trace(TraceRequest(code=SAFE_PROGRAM, seed=1), "10.0.0.9")
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


def test_only_the_first_asker_counts_against_the_rate_limit() -> None:
    traces = service(rate_limit_per_minute=1)

    async def burst() -> list[bytes]:
        return await asyncio.gather(
            *(traces.trace(TraceRequest(code=SAFE_PROGRAM), "10.0.0.1") for _ in range(3))
        )

    assert len(set(asyncio.run(burst()))) == 1


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
