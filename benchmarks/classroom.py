"""A class on the explorer, two ways.

Burst (default): a class pressing "run" at once, a burst of trace requests from many students
against one server process, with the in-process trace of the same lesson, measured in the same
run, as the anchor. Each student either sends the gallery lesson unchanged (answered from the
cache after the first) or an edit of their own (every request runs a program in a worker).

Live (--live): students typing in live mode for a while (a re-trace after each typing pause,
now and then a click on a gallery lesson) with a few hostile clients sending busy loops,
against 1 and 2 server processes behind nginx on this machine, each without and with a shared
Redis; the same number of workers in all. Prints the students' successful traces/s, their p50
and p99, and the hostile clients' share of the answers that got past the caps.

Run: .venv/bin/python -m benchmarks.classroom [--students 100] [--workers 2] [--queue 8]
     .venv/bin/python -m benchmarks.classroom --live [--students 24] [--hostile 2] [--seconds 12]
         [--workers 4]
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from app.config import Settings
from app.lessons import get_lesson
from app.tracing import trace_code
from tests.live_server import live_server


def in_process_seconds(code: str, repeat: int) -> float:
    """Median seconds of one trace_code of the lesson in this process (the anchor)."""
    trace_code(code)  # warm
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        trace_code(code)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def student(base: str, code: str) -> tuple[float, int]:
    """Seconds until this student's graph arrived, and how many busy answers came first."""
    busy = 0
    start = time.perf_counter()
    with httpx.Client(base_url=base, timeout=300) as client:
        while True:
            answer = client.post("/api/v1/trace", json={"code": code})
            if answer.status_code in (429, 503):
                busy += 1
                time.sleep(float(answer.headers.get("Retry-After", "2")))
                continue
            answer.raise_for_status()
            return time.perf_counter() - start, busy


def burst(base: str, programs: list[str]) -> dict[str, float]:
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(programs)) as pool:
        results = list(pool.map(lambda code: student(base, code), programs))
    total = time.perf_counter() - start
    waits = sorted(seconds for seconds, _ in results)
    return {
        "all_done_s": total,
        "p50_s": waits[len(waits) // 2],
        "p95_s": waits[int(len(waits) * 0.95) - 1],
        "busy_answers": sum(b for _, b in results),
        "traces_per_s": len(programs) / total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--students", type=int, default=None)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--queue", type=int, default=8)
    parser.add_argument("--lesson", default="mlp_cross_entropy")
    parser.add_argument("--live", action="store_true", help="students in live mode, see above")
    parser.add_argument("--hostile", type=int, default=2, help="live: busy-loop clients")
    parser.add_argument("--seconds", type=float, default=12, help="live: per deployment")
    args = parser.parse_args()
    if args.live:
        from benchmarks.classroom_live import run_all

        run_all(args.students or 24, args.hostile, args.seconds, args.workers or 4)
        return
    args.students = args.students or 100
    args.workers = args.workers or 2
    code = get_lesson(args.lesson).code
    anchor = in_process_seconds(code, repeat=5)
    print(f"lesson {args.lesson}: in-process trace {anchor * 1000:.0f} ms (anchor)")
    settings = Settings(
        workers=args.workers, queue_size=args.queue, cache_entries=max(64, args.students)
    )
    with live_server(settings) as (base, _):
        student(base, "import torch\n")  # warm the workers
        print(f"{args.students} students, AE_WORKERS={args.workers}, AE_QUEUE_SIZE={args.queue}")
        print(
            "| burst | all done s | p50 s | p95 s | busy answers | traces/s | x in-process rate |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|")
        for label, programs in (
            (
                "own edits (cache misses)",
                [f"{code}\n# student {i}\n" for i in range(args.students)],
            ),
            ("same lesson (cache hits)", [code] * args.students),
        ):
            r = burst(base, programs)
            print(
                f"| {label} | {r['all_done_s']:.1f} | {r['p50_s']:.2f} | {r['p95_s']:.2f} | "
                f"{r['busy_answers']:.0f} | {r['traces_per_s']:.1f} | "
                f"{r['traces_per_s'] * anchor:.2f} |"
            )


if __name__ == "__main__":
    main()
