"""Load: 16 clients trace small gallery lessons with fresh seeds (no cache hits) for N seconds,
honouring 503 + Retry-After, optionally while one more client sends `while True: pass`.
Prints successful traces/s, p50 and p99 of successful traces, and the status counts.

Run: .venv/bin/python -m benchmarks.load [--seconds 10] [--clients 16] [--hostile] [--url URL]
Without --url it starts `autograd-explorer serve` on a free loopback port (AE_* settings from the
environment apply) and stops it at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import time
from collections import Counter

import httpx

from app.lessons import get_lesson
from tests.live_server import served_process

SMALL_LESSONS = (
    "linear_expression",
    "shared_weight",
    "retain_grad",
    "second_derivative",
    "grad_accumulation",
    "implicit_backward",
    "linear_regression",
    "two_layer_relu",
    "custom_function",
)
BUSY_LOOP = "while True:\n    pass\n"


class Tally:
    """Latencies of successful traces and every status seen, per kind of client."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.hostile: Counter[str] = Counter()


async def lesson_client(
    client: httpx.AsyncClient, seeds: itertools.count, until: float, tally: Tally
) -> None:
    codes = [get_lesson(lesson).code for lesson in SMALL_LESSONS]
    turn = 0
    while time.monotonic() < until:
        body = {"code": codes[turn % len(codes)], "seed": next(seeds)}
        turn += 1
        start = time.monotonic()
        try:
            response = await client.post("/api/v1/trace", json=body)
        except httpx.HTTPError as exc:
            tally.statuses[type(exc).__name__] += 1
            continue
        tally.statuses[str(response.status_code)] += 1
        if response.status_code == 200:
            tally.latencies.append(time.monotonic() - start)
        elif response.status_code in (429, 503):
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")))


async def hostile_client(
    client: httpx.AsyncClient, seeds: itertools.count, until: float, tally: Tally
) -> None:
    while time.monotonic() < until:
        body = {"code": BUSY_LOOP, "seed": next(seeds)}
        try:
            response = await client.post("/api/v1/trace", json=body)
            tally.hostile[str(response.status_code)] += 1
            if response.status_code in (429, 503):
                await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
        except httpx.HTTPError as exc:
            tally.hostile[type(exc).__name__] += 1


async def run_load(url: str, seconds: float, clients: int, hostile: bool) -> Tally:
    tally = Tally()
    seeds = itertools.count(int(time.time() * 1000) % 2**31)  # fresh seeds: no cache hits
    limits = httpx.Limits(max_connections=clients + 2)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        until = time.monotonic() + seconds
        tasks = [lesson_client(client, seeds, until, tally) for _ in range(clients)]
        if hostile:
            tasks.append(hostile_client(client, seeds, until, tally))
        await asyncio.gather(*tasks)
    return tally


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(tally: Tally, seconds: float, clients: int, hostile: bool) -> None:
    ok = len(tally.latencies)
    print(f"clients {clients}{' + 1 hostile' if hostile else ''}, {seconds:g} s")
    print(f"successful traces/s  {ok / seconds:.1f}  ({ok} traces)")
    if ok:
        print(f"p50  {statistics.median(tally.latencies) * 1000:.0f} ms")
        print(f"p99  {percentile(tally.latencies, 0.99) * 1000:.0f} ms")
    print("statuses", dict(sorted(tally.statuses.items())))
    if hostile:
        print("hostile statuses", dict(sorted(tally.hostile.items())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--hostile", action="store_true", help="one client sends busy loops")
    parser.add_argument("--url", help="a running server (default: start one)")
    args = parser.parse_args()
    if args.url:
        tally = asyncio.run(run_load(args.url, args.seconds, args.clients, args.hostile))
    else:
        with served_process({}) as url:
            tally = asyncio.run(run_load(url, args.seconds, args.clients, args.hostile))
    report(tally, args.seconds, args.clients, args.hostile)


if __name__ == "__main__":
    main()
