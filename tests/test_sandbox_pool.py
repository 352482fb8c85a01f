"""The worker pool under load: timeouts, a responsive health check, workers replaced, busy answers."""

from __future__ import annotations

import concurrent.futures
import os
import time
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from tests.conftest import SAFE_PROGRAM, w_grad
from tests.live_server import live_server

pytestmark = pytest.mark.slow
LOOP = "for i in range(10**9):\n    pass\n"


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(c) for c in text)
    return found


def python_descendants(pid: int) -> list[int]:
    """Python processes below pid: the zygote (inside the jail's processes) and its children."""
    found, stack = [], children_of(pid)
    while stack:
        child = stack.pop()
        try:
            if "python" in Path(f"/proc/{child}/comm").read_text():
                found.append(child)
            stack.extend(children_of(child))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def test_twenty_concurrent_loops_all_time_out_while_health_answers() -> None:
    settings = Settings(workers=4, queue_size=20, wall_seconds=2, cpu_seconds=10)
    with live_server(settings) as (base, app):
        pool = app.state.service.pool
        zygote = pool.zygote_pid
        with concurrent.futures.ThreadPoolExecutor(max_workers=21) as executor:
            futures = [
                executor.submit(
                    httpx.post, f"{base}/api/v1/trace", json={"code": LOOP, "seed": i}, timeout=120
                )
                for i in range(20)
            ]
            latencies = []
            while not all(f.done() for f in futures):
                start = time.perf_counter()
                assert httpx.get(f"{base}/api/v1/health", timeout=5).status_code == 200
                latencies.append(time.perf_counter() - start)
                time.sleep(0.2)
            responses = [f.result() for f in futures]
        assert len(latencies) >= 5 and max(latencies) < 1.0
        for response in responses:
            assert response.status_code == 422
            assert response.json()["detail"]["limit"] in ("wall_time", "cpu_time")
        # the same worker parent serves on, with every child gone and a fresh one per request
        assert pool.zygote_pid == zygote and pool.alive
        assert len(python_descendants(zygote)) == 1  # the zygote itself, no child left
        after = httpx.post(
            f"{base}/api/v1/trace", json={"code": SAFE_PROGRAM, "seed": 77}, timeout=30
        )
        assert after.status_code == 200 and w_grad(after.json()) == [5.0]


def test_full_queue_is_503_with_retry_after() -> None:
    settings = Settings(workers=1, queue_size=1, wall_seconds=2, cpu_seconds=10)
    with live_server(settings) as (base, _):
        with concurrent.futures.ThreadPoolExecutor(max_workers=5) as executor:
            futures = [
                executor.submit(
                    httpx.post, f"{base}/api/v1/trace", json={"code": LOOP, "seed": i}, timeout=60
                )
                for i in range(5)
            ]
            statuses = sorted(f.result().status_code for f in futures)
            busy = [f.result() for f in futures if f.result().status_code == 503]
        assert statuses.count(503) >= 2 and set(statuses) <= {422, 503}
        assert (
            busy[0].headers["retry-after"].isdigit() and busy[0].json()["detail"]["type"] == "Busy"
        )


def test_a_killed_worker_parent_is_replaced() -> None:
    settings = Settings(workers=1, queue_size=4, wall_seconds=3)
    with live_server(settings) as (base, app):
        pool = app.state.service.pool
        old = pool.zygote_pid
        os.kill(old, 9)
        statuses = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200
            response = httpx.post(
                f"{base}/api/v1/trace", json={"code": SAFE_PROGRAM, "seed": 5}, timeout=60
            )
            statuses.append(response.status_code)
            if response.status_code == 200:
                break
            assert response.status_code == 503 and response.headers["retry-after"].isdigit()
            time.sleep(0.2)
        assert statuses[-1] == 200 and w_grad(response.json()) == [5.0]
        assert pool.zygote_pid != old and pool.restarts == 1
