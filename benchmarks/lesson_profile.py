"""Where the time of one small uncached lesson goes: fork, policy, run and recording, the child's
JSON, the server's parse, layout, the answer's JSON; and the whole request through the pool.

Run: .venv/bin/python -m benchmarks.lesson_profile [--lesson shared_weight] [--repeat 20]
Medians of each phase measured one by one in this process (the pool does the same steps in a
forked child and in the server); `end to end` is POST /api/v1/trace with a fresh seed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

from fastapi.testclient import TestClient

from app.config import Settings
from app.examples import get_example
from app.layout import layout_graph
from app.main import create_app
from app.sandbox import policy, runner
from app.schemas import Graph
from app.tracing import trace_code


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def fork_and_wait() -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lesson", default="shared_weight")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    code, n = get_example(args.lesson).code, args.repeat
    graph = trace_code(code)  # warm torch and the recorder
    payload = graph.model_dump_json().encode()
    phases = {
        "fork + exit + wait (torch-warm parent)": median_ms(fork_and_wait, n),
        "policy check": median_ms(lambda: policy.check(code), n),
        "policy + instrument + compile": median_ms(lambda: runner.compile_program(code), n),
        "trace_code (compile, run, record)": median_ms(lambda: trace_code(code), n),
        "graph JSON in the child": median_ms(graph.model_dump_json, n),
        "parse in the server": median_ms(lambda: Graph.model_validate_json(payload), n),
        "layout (dot)": median_ms(lambda: layout_graph(graph, []), n),
    }
    laid_out = graph.model_copy(update={"layout": layout_graph(graph, [])})
    phases["answer JSON with layout"] = median_ms(laid_out.model_dump_json, n)
    with TestClient(create_app(Settings())) as client:
        seeds = iter(range(10_000, 10_000 + 2 * n + 5))
        client.post("/api/v1/trace", json={"code": code, "seed": next(seeds)})  # warm the pool
        phases["end to end, uncached, through the pool"] = median_ms(
            lambda: client.post("/api/v1/trace", json={"code": code, "seed": next(seeds)}), n
        )
    print(f"lesson {args.lesson}: {len(graph.nodes)} nodes, {len(payload)} bytes of JSON")
    print("| phase | median ms |\n|---|---:|")
    for name, value in phases.items():
        print(f"| {name} | {value:.1f} |")


if __name__ == "__main__":
    main()
