"""Live mode's budget: the round trip of a small lesson through the HTTP API, uncached.

Each request traces the shared-weight lesson with a new seed (so the result cache never
answers), in a jailed worker child, with layout, rules and JSON; back to back, and 0.1 s
apart (live mode waits for a 0.4 s pause in typing, time in which the pool's spare child and
the spare dot are ready). Anchors measured in the same run: a request that does no work (GET
/api/v1/health), an empty program through the same worker pool (the hand-over to a child), the
same trace in-process without HTTP, workers or layout, with and without the chain-rule pass,
the layout alone with a warm spare dot and with a fresh one, and the server without the pool.

Run: .venv/bin/python -m benchmarks.round_trip [--runs 30]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import httpx
import torch

import app.recorder.recorder as recorder_module
from app.config import Settings
from app.layout import layout_graph
from app.lessons import get_lesson
from app.tracing import trace_code
from tests.live_server import live_server

try:
    from app import dot_spare
except ImportError:  # code from before the spare dot: every layout starts its own
    dot_spare = None

TARGET_MS = 30.0  # a small uncached lesson on a quiet 2-core machine
PACE_SECONDS = 0.1


def timed(
    action: Callable[[int], object], runs: int, pause: Callable[[], object] | None = None
) -> list[float]:
    """Milliseconds of each of runs calls, after one warm-up call (pause runs untimed before each)."""
    action(-1)
    times = []
    for i in range(runs):
        if pause is not None:
            pause()
        start = time.perf_counter()
        action(i)
        times.append((time.perf_counter() - start) * 1000)
    return times


def paced() -> None:
    """Wait as a live-mode user between two edits would, only shorter."""
    time.sleep(PACE_SECONDS)


def fresh_dot() -> None:
    """Drop the waiting spare dot, so that the next layout starts its own."""
    if dot_spare is not None:
        dot_spare.SPARES.settle()
        dot_spare.SPARES.close()


def post_trace(client: httpx.Client, code: str, seed: int) -> None:
    """One uncached trace through the API (a new seed misses the result cache)."""
    response = client.post("/api/v1/trace", json={"code": code, "seed": seed})
    response.raise_for_status()
    steps = [s for p in response.json()["backward"] for s in p["steps"]]
    assert all(s["rule"] for s in steps)


def line(label: str, times: list[float], anchor: float | None = None) -> str:
    p50 = statistics.median(times)
    p90 = sorted(times)[int(0.9 * (len(times) - 1))]
    ratio = f"  {p50 / anchor:6.2f}× anchor" if anchor else ""
    return f"{label:<50} p50 {p50:7.2f} ms  p90 {p90:7.2f} ms{ratio}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    runs = parser.parse_args().runs
    torch.set_num_threads(1)  # as in the worker children: one thread, no idle spinning
    code = get_lesson("shared_weight").code
    in_process = timed(lambda i: trace_code(code, seed=i + 1), runs)
    real_attach = recorder_module.attach_rules
    recorder_module.attach_rules = lambda graph: graph
    try:
        without_rules = timed(lambda i: trace_code(code, seed=i + 1), runs)
    finally:
        recorder_module.attach_rules = real_attach
    graph = trace_code(code)
    layout = timed(lambda i: layout_graph(graph, []), runs, paced)
    layout_fresh = timed(lambda i: layout_graph(graph, []), runs, fresh_dot)
    with live_server(Settings()) as (base, _), httpx.Client(base_url=base) as client:
        health = timed(lambda i: client.get("/api/v1/health").raise_for_status(), runs)
        round_trip = timed(lambda i: post_trace(client, code, 1000 + i), runs)
        round_trip_paced = timed(lambda i: post_trace(client, code, 3000 + i), runs, paced)
        worker = timed(lambda i: post_trace(client, "import torch\n", 5000 + i), runs, paced)
    with live_server(Settings(isolation=False)) as (base, _), httpx.Client(base_url=base) as client:
        unisolated = timed(lambda i: post_trace(client, code, 1000 + i), runs, paced)
    anchor = statistics.median(health)
    print(f"shared-weight lesson, {runs} runs each")
    print(line("GET /api/v1/health (anchor)", health))
    print(line("trace_code in-process, without rules", without_rules, anchor))
    print(line("trace_code in-process, with rules", in_process, anchor))
    print(line("layout_graph, a fresh dot", layout_fresh, anchor))
    print(line("layout_graph, the warm spare dot", layout, anchor))
    print(line("POST /api/v1/trace of an empty program", worker, anchor))
    print(line("POST /api/v1/trace uncached, in-process (no pool)", unisolated, anchor))
    print(line("POST /api/v1/trace uncached, back to back", round_trip, anchor))
    print(line(f"POST /api/v1/trace uncached, {PACE_SECONDS:g} s apart", round_trip_paced, anchor))
    for label, times in (("back to back", round_trip), ("paced", round_trip_paced)):
        p50 = statistics.median(times)
        print(f"round trip p50, {label} / {TARGET_MS:.0f} ms aim: {p50 / TARGET_MS:.2f}")


if __name__ == "__main__":
    main()
