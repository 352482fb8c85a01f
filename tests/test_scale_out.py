"""Two real server processes behind a real nginx, sharing a real redis-server: a session's
allowance holds over both, a program traced on one is answered from the cache on the other,
and both keep serving when Redis stops or one of them is killed mid-load.

The cluster is shared by the tests of this module, in file order: the last one kills a server."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from app.lessons import get_lesson
from tests.conftest import SAFE_PROGRAM, w_grad
from tests.local_services import (
    DEADLINE_SECONDS,
    ExplorerProcess,
    RedisServer,
    explorer_processes,
    need_nginx,
    need_redis,
    nginx_proxy,
    proxy_site,
    redis_server,
)

PER_MINUTE = 4  # a session's traces a minute, over the whole deployment
# which server answered, for the tests that need both to have answered
NAMES_UPSTREAM = (
    "        proxy_connect_timeout 5s;\n        add_header X-Upstream $upstream_addr always;\n"
)


@dataclass
class Cluster:
    redis: RedisServer
    servers: list[ExplorerProcess]
    base: str  # nginx


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    need_redis(), need_nginx()
    with redis_server() as redis:
        settings = {
            "redis_url": redis.url,
            "trusted_proxies": "127.0.0.1",  # nginx names the client in X-Forwarded-For
            "rate_limit_localhost": "true",  # every client here is on loopback
            "rate_limit_per_minute": PER_MINUTE,
            "workers": 1,
            "queue_size": 32,
            "wall_seconds": 120,
            "cpu_seconds": 20,
        }
        with explorer_processes(2, settings) as servers:
            site = proxy_site([s.port for s in servers], location_extra=NAMES_UPSTREAM)
            with nginx_proxy(site) as port:
                yield Cluster(redis, servers, f"http://127.0.0.1:{port}")


def new_session(base: str) -> dict[str, str]:
    token = httpx.get(f"{base}/api/v1/session", timeout=DEADLINE_SECONDS).json()["token"]
    return {"X-AE-Session": token}


def until(condition: object, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS * 3
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"not reached in time: {what}")


def test_every_process_shares_redis(cluster: Cluster) -> None:
    assert [s.health()["shared_state"] for s in cluster.servers] == ["redis", "redis"]


def test_a_sessions_allowance_holds_over_both_processes(cluster: Cluster) -> None:
    lesson = get_lesson("shared_weight").code
    warm = httpx.post(  # another session traces it first: the counted requests are cache hits,
        f"{cluster.base}/api/v1/trace",  # so however slow the machine, they fit in one minute
        json={"code": lesson},
        headers=new_session(cluster.base),
        timeout=DEADLINE_SECONDS,
    )
    assert warm.status_code == 200, warm.text
    session = new_session(cluster.base)  # one process signs it, the other accepts it
    answers = [
        httpx.post(
            f"{cluster.base}/api/v1/trace",
            json={"code": lesson},
            headers=session,
            timeout=DEADLINE_SECONDS,
        )
        for _ in range(PER_MINUTE + 2)
    ]
    codes = [a.status_code for a in answers]
    assert codes == [200] * PER_MINUTE + [429, 429], codes
    assert len({a.headers["X-Upstream"] for a in answers}) == 2  # round robin: both answered
    assert all(1 <= int(a.headers["Retry-After"]) <= 61 for a in answers[PER_MINUTE:])
    other = httpx.post(
        f"{cluster.base}/api/v1/trace",
        json={"code": lesson},
        headers=new_session(cluster.base),
        timeout=DEADLINE_SECONDS,
    )
    assert other.status_code == 200  # the allowance is the session's, not everyone's


def test_a_program_traced_on_one_process_is_a_cache_hit_on_the_other(cluster: Cluster) -> None:
    first, second = cluster.servers
    session = new_session(first.base)
    program = {"code": SAFE_PROGRAM, "seed": random.randrange(10**9)}
    ran_before = second.health()["programs_run"]
    traced = httpx.post(
        f"{first.base}/api/v1/trace", json=program, headers=session, timeout=DEADLINE_SECONDS
    )
    assert traced.status_code == 200 and w_grad(traced.json()) == [5.0]
    again = httpx.post(
        f"{second.base}/api/v1/trace", json=program, headers=session, timeout=DEADLINE_SECONDS
    )
    assert again.status_code == 200 and again.content == traced.content
    assert second.health()["programs_run"] == ran_before  # answered without running it
    stranger = httpx.post(
        f"{second.base}/api/v1/trace",
        json=program,
        headers=new_session(second.base),
        timeout=DEADLINE_SECONDS,
    )
    assert stranger.status_code == 200  # another session's edit is not served from its cache
    assert second.health()["programs_run"] == ran_before + 1


@dataclass
class Load:
    """Students tracing programs of their own through nginx, one new session a request, until
    stopped: (started, ended, status) of every answer."""

    base: str
    answers: list[tuple[float, float, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, students: int = 3) -> Load:
        for _ in range(students):
            thread = threading.Thread(target=self._student, daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def _student(self) -> None:
        with httpx.Client(base_url=self.base, timeout=DEADLINE_SECONDS * 2) as client:
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    client.cookies.clear()  # a new session: the cookie would keep the last
                    token = client.get("/api/v1/session").json()["token"]
                    answer = client.post(
                        "/api/v1/trace",
                        json={"code": SAFE_PROGRAM, "seed": random.randrange(10**9)},
                        headers={"X-AE-Session": token},
                    )
                    status = answer.status_code
                    if status == 200 and w_grad(answer.json()) != [5.0]:
                        status = -1
                except (httpx.HTTPError, ValueError, KeyError):
                    status = 0
                with self.lock:
                    self.answers.append((started, time.monotonic(), status))

    def count(self, since: float = 0.0) -> int:
        with self.lock:
            return sum(1 for started, _, _ in self.answers if started >= since)

    def statuses(self, since: float = 0.0, ended_by: float = float("inf")) -> list[int]:
        """Statuses of the requests started at since or later and ended by ended_by."""
        with self.lock:
            return [
                s for started, ended, s in self.answers if since <= started and ended <= ended_by
            ]

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(DEADLINE_SECONDS * 3)


def test_both_keep_serving_when_redis_stops_mid_load(cluster: Cluster) -> None:
    load = Load(cluster.base).start()
    try:
        until(lambda: load.count() >= 4, "answers before Redis stops")
        stopped_at = time.monotonic()
        cluster.redis.stop()
        until(lambda: load.count(stopped_at) >= 6, "answers after Redis stopped")
        until(
            lambda: all(s.health()["shared_state"] == "degraded" for s in cluster.servers),
            "health says degraded",
        )
        degraded_at = time.monotonic()
        until(lambda: load.count(degraded_at) >= 4, "answers while degraded")
    finally:
        load.finish()
    assert set(load.statuses()) == {200}
    cluster.redis.start()  # an empty Redis again on the same port: both take it up again
    until(
        lambda: all(s.health()["shared_state"] == "redis" for s in cluster.servers),
        "both use Redis again",
    )


def test_one_process_killed_mid_load_leaves_the_other_serving(cluster: Cluster) -> None:
    victim, survivor = cluster.servers
    load = Load(cluster.base).start()
    try:
        until(lambda: load.count() >= 4, "answers before the kill")
        about_to_kill = time.monotonic()
        victim.process.kill()
        victim.process.wait()
        killed_at = time.monotonic()
        until(lambda: load.count(killed_at) >= 6, "answers after the kill")
    finally:
        load.finish()
    before = load.statuses(ended_by=about_to_kill)
    assert before and set(before) == {200}, before  # those in flight at the kill may fail
    after = load.statuses(since=killed_at)
    assert set(after) == {200}, after  # nginx sends every new request to the survivor
    assert survivor.health()["shared_state"] == "redis"
