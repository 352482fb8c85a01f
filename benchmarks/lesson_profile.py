"""Where the time of one small uncached lesson goes: fork, policy, run and recording (in this
process, in a fresh fork, in a fork that ran the spare's warm-up lesson first), the child's
JSON, the server's parse, layout (fresh dot, warm spare dot), the answer's JSON; and the whole
request through the pool, back to back and 0.1 s apart.

Run: .venv/bin/python -m benchmarks.lesson_profile [--lesson shared_weight] [--repeat 20]
Medians of each phase measured one by one in this process (the pool does the same steps in a
forked child and in the server); `end to end` is POST /api/v1/trace with a fresh seed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable

import torch
from fastapi.testclient import TestClient

from app.config import Settings
from app.layout import layout_graph
from app.lessons import get_lesson
from app.main import create_app
from app.sandbox import policy, runner
from app.schemas import Graph
from app.tracing import trace_code
from benchmarks.round_trip import PACE_SECONDS, dot_spare, fresh_dot, paced

try:
    from app.sandbox.pool import SPARE_WARM_UP_PROGRAM
except ImportError:  # code from before the spares
    SPARE_WARM_UP_PROGRAM = None


def median_ms(
    fn: Callable[[], object], repeat: int, pause: Callable[[], object] | None = None
) -> float:
    """Median milliseconds of repeat calls of fn (pause runs untimed before each)."""
    times = []
    for _ in range(repeat):
        if pause is not None:
            pause()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def fork_and_wait() -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


def trace_in_fork(code: str, warm_up: str | None) -> float:
    """Milliseconds of one trace_code in a forked child (after a warm-up lesson there, if any)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        if warm_up is not None:
            trace_code(warm_up)
        start = time.perf_counter()
        trace_code(code)
        os.write(write_fd, json.dumps((time.perf_counter() - start) * 1000).encode())
        os._exit(0)
    os.close(write_fd)
    data = os.read(read_fd, 64)
    os.close(read_fd)
    os.waitpid(pid, 0)
    return json.loads(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lesson", default="shared_weight")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as in the worker children: one thread, no idle spinning
    code, n = get_lesson(args.lesson).code, args.repeat
    graph = trace_code(code)  # warm torch and the recorder
    payload = graph.model_dump_json().encode()
    phases = {
        "fork + exit + wait (torch-warm parent)": median_ms(fork_and_wait, n),
        "policy check": median_ms(lambda: policy.check(code), n),
        "policy + instrument + compile": median_ms(lambda: runner.compile_program(code), n),
        "trace_code (compile, run, record)": median_ms(lambda: trace_code(code), n),
        "trace_code, first in a fresh fork": statistics.median(
            trace_in_fork(code, None) for _ in range(n)
        ),
        "graph JSON in the child": median_ms(graph.model_dump_json, n),
        "parse in the server": median_ms(lambda: Graph.model_validate_json(payload), n),
        "layout, a fresh dot": median_ms(lambda: layout_graph(graph, []), n, fresh_dot),
    }
    if SPARE_WARM_UP_PROGRAM is not None:
        phases["trace_code in a fork after the spare's warm-up"] = statistics.median(
            trace_in_fork(code, SPARE_WARM_UP_PROGRAM) for _ in range(n)
        )
    if dot_spare is not None:
        phases["layout, the warm spare dot"] = median_ms(lambda: layout_graph(graph, []), n, paced)
    laid_out = graph.model_copy(update={"layout": layout_graph(graph, [])})
    phases["answer JSON with layout"] = median_ms(laid_out.model_dump_json, n)
    with TestClient(create_app(Settings())) as client:
        seeds = iter(range(10_000, 10_000 + 2 * n + 5))
        client.post("/api/v1/trace", json={"code": code, "seed": next(seeds)})  # warm the pool
        phases["end to end, uncached, through the pool, back to back"] = median_ms(
            lambda: client.post("/api/v1/trace", json={"code": code, "seed": next(seeds)}), n
        )
        phases[f"end to end, uncached, through the pool, {PACE_SECONDS:g} s apart"] = median_ms(
            lambda: client.post("/api/v1/trace", json={"code": code, "seed": next(seeds)}),
            n,
            paced,
        )
    print(f"lesson {args.lesson}: {len(graph.nodes)} nodes, {len(payload)} bytes of JSON")
    print("| phase | median ms |\n|---|---:|")
    for name, value in phases.items():
        print(f"| {name} | {value:.1f} |")


if __name__ == "__main__":
    main()
