"""The worker pool: spare children serve one request each; under load timeouts, a responsive
health check, workers replaced, busy answers."""

from __future__ import annotations

import concurrent.futures
import os
import time
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from app.sandbox.pool import SPARE_CHILDREN
from app.sandbox.wire import is_complete
from tests.conftest import SAFE_PROGRAM, w_grad
from tests.held_program import HELD_PROGRAM, release_held
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
    """Python processes below pid: the worker parent (inside the jail's processes) and its children."""
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


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def parent_children(parent: int) -> list[int]:
    """The worker parent's own children (requests running, spares waiting), by process id."""
    pythons = {*python_descendants(parent), parent}
    found = []
    for pid in pythons:
        try:
            if parent_of(pid) in pythons and pid != parent:
                found.append(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def wait_for(condition, seconds: float = 60.0):  # noqa: ANN001, ANN201 - a test helper
    """condition()'s first truthy value, polling until seconds have passed."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("the condition did not come true in time")


def proc_field(pid: int, name: str, field: str) -> str:
    """The text after `field` in /proc/PID/name (such as status's 'Seccomp:')."""
    for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
        if line.startswith(field):
            return line[len(field) :].strip()
    raise KeyError(field)


LEAVE_A_MARK = (
    "import os, torch\n"
    "print('pid', os.getpid(), 'found', getattr(torch, 'left_by_earlier', None))\n"
    "torch.left_by_earlier = os.getpid()\n"
    "w = torch.tensor([1.0], requires_grad=True)\n"
    "(w * 5).sum().backward()\n"
)


def test_each_request_gets_its_own_child_that_sees_nothing_of_the_one_before() -> None:
    with live_server(Settings(workers=1)) as (base, _):
        lines = []
        for seed in range(4):
            response = httpx.post(
                f"{base}/api/v1/trace", json={"code": LEAVE_A_MARK, "seed": seed}, timeout=60
            )
            assert response.status_code == 200, response.text[:300]
            lines.append(response.json()["stdout"].split())
    assert [line[3] for line in lines] == ["None"] * 4  # no mark of an earlier request
    assert len({line[1] for line in lines}) == 4  # four processes, one per request


WALL_SECONDS = 5


def age_of(pid: int) -> float:
    """Seconds since the process started."""
    started_ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return uptime - started_ticks / os.sysconf("SC_CLK_TCK")


def test_a_spare_is_limited_before_any_request_and_replaced_after_one() -> None:
    settings = Settings(workers=1, cpu_seconds=7, wall_seconds=WALL_SECONDS)
    with live_server(settings) as (base, app):
        parent = app.state.service.pool.worker_parent_pid
        (spare,) = wait_for(lambda: parent_children(parent))
        # limits and seccomp are on while it waits, before it has read any request
        wait_for(lambda: proc_field(spare, "status", "Seccomp:") == "2")
        assert proc_field(spare, "limits", "Max cpu time").split()[:2] == ["7", "8"]
        assert proc_field(spare, "limits", "Max address space").split()[0] != "unlimited"
        assert proc_field(spare, "limits", "Max core file size").split()[0] == "0"
        # it has waited longer than the wall limit: that limit counts from the request
        wait_for(lambda: age_of(spare) > WALL_SECONDS, seconds=WALL_SECONDS + 60)
        response = httpx.post(
            f"{base}/api/v1/trace",
            json={"code": "import os, time\nprint(os.getpid(), time.process_time())\n"},
            timeout=60,
        )
        assert response.status_code == 200, response.text[:300]
        cpu_used = float(response.json()["stdout"].split()[1])
        assert cpu_used < 1.0  # nor does the CPU limit: waiting used none
        # the spare served that request and exits; a new one waits in its place
        wait_for(lambda: not Path(f"/proc/{spare}").exists())
        (replacement,) = wait_for(lambda: parent_children(parent))
        assert replacement != spare


def test_a_killed_spare_is_replaced() -> None:
    with live_server(Settings(workers=1)) as (base, app):
        parent = app.state.service.pool.worker_parent_pid
        (spare,) = wait_for(lambda: parent_children(parent))
        os.kill(spare, 9)
        (replacement,) = wait_for(lambda: [p for p in parent_children(parent) if p != spare])
        response = httpx.post(
            f"{base}/api/v1/trace", json={"code": SAFE_PROGRAM, "seed": 3}, timeout=60
        )
        assert response.status_code == 200 and w_grad(response.json()) == [5.0]
        wait_for(lambda: not Path(f"/proc/{replacement}").exists())  # it served that request


def test_an_answer_is_complete_only_with_the_body_its_header_announces() -> None:
    assert is_complete(bytearray(b'{"type": "Graph", "bytes": 4}\nabcd'))
    assert not is_complete(bytearray(b'{"type": "Graph", "bytes": 5}\nabcd'))  # cut short
    assert not is_complete(bytearray(b'{"type": "Graph"}\nabcd'))
    assert not is_complete(bytearray(b'{"type": "Graph", "bytes": 4'))
    assert not is_complete(bytearray(b""))


def test_twenty_concurrent_loops_all_time_out_while_health_answers() -> None:
    settings = Settings(workers=4, queue_size=20, wall_seconds=2, cpu_seconds=10)
    with live_server(settings) as (base, app):
        pool = app.state.service.pool
        parent = pool.worker_parent_pid
        with concurrent.futures.ThreadPoolExecutor(max_workers=21) as executor:
            futures = [
                executor.submit(
                    httpx.post, f"{base}/api/v1/trace", json={"code": LOOP, "seed": i}, timeout=120
                )
                for i in range(20)
            ]
            answered_while_running = 0
            while not all(f.done() for f in futures):
                assert httpx.get(f"{base}/api/v1/health", timeout=30).status_code == 200
                answered_while_running += not all(f.done() for f in futures)
                concurrent.futures.wait(futures, timeout=0.2)
            responses = [f.result() for f in futures]
        assert answered_while_running >= 1
        for response in responses:
            assert response.status_code == 422
            assert response.json()["detail"]["limit"] in ("wall_time", "cpu_time")
        # the same worker parent serves on, with every child gone and a fresh one per request
        assert pool.worker_parent_pid == parent and pool.alive
        # the parent itself and its spares, no child of a request left
        wait_for(lambda: len(parent_children(parent)) == SPARE_CHILDREN)
        assert len(python_descendants(parent)) == 1 + SPARE_CHILDREN
        after = httpx.post(
            f"{base}/api/v1/trace", json={"code": SAFE_PROGRAM, "seed": 77}, timeout=30
        )
        assert after.status_code == 200 and w_grad(after.json()) == [5.0]


def test_full_queue_is_503_with_retry_after() -> None:
    settings = Settings(language_layer=False, workers=1, queue_size=1, wall_seconds=120)
    with live_server(settings) as (base, _):
        with concurrent.futures.ThreadPoolExecutor(max_workers=5) as executor:
            futures = [
                executor.submit(
                    httpx.post,
                    f"{base}/api/v1/trace",
                    json={"code": HELD_PROGRAM, "seed": i},
                    timeout=120,
                )
                for i in range(5)
            ]
            # one runs and one waits, both held until released: the other three are refused
            busy = []
            for answered in concurrent.futures.as_completed(futures):
                busy.append(answered.result())
                if len(busy) == 3:
                    break
            while not all(f.done() for f in futures):
                release_held()
                concurrent.futures.wait(futures, timeout=0.2)
            statuses = sorted(f.result().status_code for f in futures)
        assert [b.status_code for b in busy] == [503] * 3 and statuses == [200, 200, 503, 503, 503]
        assert all(b.headers["retry-after"].isdigit() for b in busy)
        assert all(b.json()["detail"]["type"] == "Busy" for b in busy)


def test_a_killed_worker_parent_is_replaced() -> None:
    settings = Settings(workers=1, queue_size=4, wall_seconds=3)
    with live_server(settings) as (base, app):
        pool = app.state.service.pool
        old = pool.worker_parent_pid
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
        assert pool.worker_parent_pid != old and pool.restarts == 1
