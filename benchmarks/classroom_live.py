"""Students in live mode against 1 and 2 server processes behind nginx, without and with a
shared Redis, on this machine: the work of `python -m benchmarks.classroom --live`.

Each student has a session of their own, starts on a small gallery lesson and, after each
typing pause (1 to 4 s, the page's 400 ms wait included), asks for the graph of their edit
(a cache miss) or, one time in five, clicks another gallery lesson (a hit once anyone has
traced it). Each hostile client keeps 8 requests of `while True: pass` open at once on its one
session, sending the next as soon as an answer comes, a refusal included. Every deployment has the same workers in all (AE_WORKERS split over the
processes), the caps apply to loopback (AE_RATE_LIMIT_LOCALHOST) and a busy loop is stopped
after AE_CPU_SECONDS=5.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import statistics
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field

import httpx

from app.lessons import get_lesson
from benchmarks.load import BUSY_LOOP, SMALL_LESSONS, percentile
from tests.local_services import explorer_processes, nginx_proxy, proxy_site, redis_server

REFUSED = {429, 503}
HOSTILE_AT_ONCE = 8  # requests each hostile client keeps open at once


@dataclass
class Tally:
    """What the students and the hostile clients got."""

    latencies: list[float] = field(default_factory=list)  # students' successful traces
    students: Counter[int] = field(default_factory=Counter)
    hostile: Counter[int] = field(default_factory=Counter)


async def student(base: str, until: float, tally: Tally, rng: random.Random) -> None:
    lessons = [get_lesson(name).code for name in SMALL_LESSONS]
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        await client.get("/api/v1/session")  # the cookie, as a page gets it
        code = rng.choice(lessons)
        for edit in itertools.count():
            await asyncio.sleep(rng.uniform(1.0, 4.0))
            if time.monotonic() >= until:
                return
            if rng.random() < 0.2:
                code = rng.choice(lessons)
                body = {"code": code}
            else:
                body = {"code": f"{code}\n# edit {edit}\n"}
            start = time.monotonic()
            try:
                answer = await client.post("/api/v1/trace", json=body)
            except httpx.HTTPError:
                tally.students[0] += 1
                continue
            tally.students[answer.status_code] += 1
            if answer.status_code == 200:
                tally.latencies.append(time.monotonic() - start)


async def hostile(base: str, until: float, tally: Tally, seeds: itertools.count) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        await client.get("/api/v1/session")  # one session, many requests at once

        async def flood() -> None:
            while time.monotonic() < until:
                try:
                    answer = await client.post(
                        "/api/v1/trace", json={"code": BUSY_LOOP, "seed": next(seeds)}
                    )
                    tally.hostile[answer.status_code] += 1
                    if answer.status_code in REFUSED:
                        await asyncio.sleep(0.05)  # no pause worth the name; spares this machine
                except httpx.HTTPError:
                    tally.hostile[0] += 1

        await asyncio.gather(*(flood() for _ in range(HOSTILE_AT_ONCE)))


async def lesson(base: str, students: int, hostiles: int, seconds: float) -> Tally:
    tally = Tally()
    until = time.monotonic() + seconds
    rng = random.Random(24)
    seeds = itertools.count(int(time.time()))
    await asyncio.gather(
        *(student(base, until, tally, random.Random(rng.random())) for _ in range(students)),
        *(hostile(base, until, tally, seeds) for _ in range(hostiles)),
    )
    return tally


def deployment(processes: int, shared: bool, workers: int, stack: ExitStack) -> tuple[str, list]:
    """(nginx URL, servers) of processes with workers split between them, maybe on Redis."""
    settings: dict[str, object] = {
        "workers": max(1, workers // processes),
        "queue_size": 32,
        "cpu_seconds": 5,
        "rate_limit_localhost": "true",
        "trusted_proxies": "127.0.0.1",
        "session_key": os.urandom(16).hex(),  # one key: sessions hold on every process
    }
    if shared:
        settings["redis_url"] = stack.enter_context(redis_server()).url
    servers = stack.enter_context(explorer_processes(processes, settings))
    site = proxy_site([s.port for s in servers], balance="least_conn;")
    port = stack.enter_context(nginx_proxy(site))
    base = f"http://127.0.0.1:{port}"
    for server in servers:  # warm each process's workers
        httpx.post(f"{server.base}/api/v1/trace", json={"code": "import torch\n"}, timeout=120)
    return base, servers


def row(processes: int, shared: bool, tally: Tally, seconds: float, ran: int) -> str:
    ok = len(tally.latencies)
    admitted_students = sum(n for code, n in tally.students.items() if code not in REFUSED)
    admitted_hostile = sum(n for code, n in tally.hostile.items() if code not in REFUSED)
    share = admitted_hostile / max(1, admitted_students + admitted_hostile)
    p50 = statistics.median(tally.latencies) if ok else float("nan")
    p99 = percentile(tally.latencies, 0.99)
    refused = sum(tally.students[c] for c in REFUSED)
    failed = sum(n for code, n in tally.students.items() if code not in REFUSED | {200})
    hostile_refused = sum(tally.hostile[c] for c in REFUSED)
    return (
        f"| {processes} | {'yes' if shared else 'no'} | {ok / seconds:.1f} | {p50:.2f} | "
        f"{p99:.2f} | {refused} | {failed} | {ran} | {share:.0%} | {hostile_refused} |"
    )


def run_all(students: int, hostiles: int, seconds: float, workers: int) -> None:
    """Every deployment in turn, one table row each."""
    print(
        f"{students} students in live mode, {hostiles} hostile clients, {seconds:g} s each, "
        f"{workers} workers in all, {os.cpu_count()} cores"
    )
    print(
        "| processes | Redis | student traces/s | p50 s | p99 s | students refused | "
        "students failed | programs run | hostile share | hostile refused |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for processes, shared in ((1, False), (1, True), (2, False), (2, True)):
        with ExitStack() as stack:
            base, servers = deployment(processes, shared, workers, stack)
            before = sum(s.health()["programs_run"] for s in servers)
            tally = asyncio.run(lesson(base, students, hostiles, seconds))
            ran = sum(s.health()["programs_run"] for s in servers) - before
        print(row(processes, shared, tally, seconds, ran), flush=True)
