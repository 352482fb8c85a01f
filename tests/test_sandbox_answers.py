"""A lying child: programs (with the courtesy layer off) that write their own bytes to the socket
their answer goes back on. The server decides every status from a closed set, quotes what it
logs, ends a child once its answer is whole, and keeps serving everyone."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.sandbox.worker_parent import SPARE_CHILDREN
from tests.conftest import SAFE_PROGRAM, w_grad
from tests.test_sandbox_pool import parent_children, wait_for
from tests.test_sandbox_wire import HEADERS

pytestmark = pytest.mark.slow
CLOSED_SET = {
    200: {None},
    400: {"PolicyError", "DeviceUnavailable"},
    422: {"LimitExceeded", "InternalError", "BadAnswer", "WorkerCrashed"},
    503: {"Busy", "Unavailable"},
}
EXIT = "os._exit(0)"
GO_ON = "pass"  # the child's own answer follows the forged bytes
SLEEP_INSTEAD_OF_EXIT = "os._exit = lambda status: time.sleep(3600)"


def lie(data: bytes, then: str = EXIT) -> str:
    """A program that writes data to every socket it holds (its answer's), then does `then`."""
    return (
        "import os, stat, time\n"
        f"data = bytes.fromhex({data.hex()!r})\n"
        "for fd in range(3, 256):\n"
        "    try:\n"
        "        if stat.S_ISSOCK(os.fstat(fd).st_mode):\n"
        "            os.write(fd, data)\n"
        "    except OSError:\n"
        "        pass\n"
        f"{then}\n"
    )


def answer(header: dict, body: bytes = b"") -> bytes:
    return json.dumps(header).encode() + b"\n" + body


@pytest.fixture(scope="module")
def client(client_with) -> TestClient:
    return client_with(
        language_layer=False,
        wall_seconds=600,
        cpu_seconds=60,
        workers=2,
        queue_size=8,
        cache_entries=0,
        rate_limit_per_minute=0,
    )


def trace(client: TestClient, code: str) -> tuple[int, dict]:
    response = client.post("/api/v1/trace", json={"code": code})
    body = response.json()
    kind = body.get("detail", {}).get("type") if response.status_code != 200 else None
    assert kind in CLOSED_SET.get(response.status_code, set()), (response.status_code, body)
    return response.status_code, body


def serves_a_lesson(client: TestClient) -> None:
    status, body = trace(client, SAFE_PROGRAM)
    assert status == 200 and w_grad(body) == [5.0]
    health = client.get("/api/v1/health").json()
    assert health["workers_ok"] is True


def test_a_forged_detail_is_a_bad_answer_and_every_later_trace_is_answered(
    client: TestClient,
) -> None:
    # once, this header stopped the thread that reads every child's answer
    status, body = trace(client, lie(b'{"status": 400, "detail": "not a detail", "bytes": 0}\n'))
    assert status == 422 and body["detail"]["type"] == "BadAnswer"
    for _ in range(3):
        serves_a_lesson(client)
    assert client.app.state.service.pool.restarts == 0


def test_a_child_cannot_choose_its_status(client: TestClient) -> None:
    forged = answer({"type": "InternalError", "bytes": 0, "message": "boom", "status": 500})
    status, body = trace(client, lie(forged))
    assert status == 422 and body["detail"]["type"] == "BadAnswer"
    status, body = trace(client, lie(answer({"status": 500, "bytes": 0})))
    assert status == 422 and body["detail"]["type"] == "BadAnswer"


def test_a_forged_message_cannot_forge_a_log_line(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    fake_line = '\n127.0.0.1:5 - "GET /admin HTTP/1.1" 200 OK\n'
    forged = answer({"type": "InternalError", "bytes": 0, "message": f"boom{fake_line}"})
    with caplog.at_level(logging.INFO):
        status, body = trace(client, lie(forged))
    assert status == 422 and body["detail"]["message"] == f"boom{fake_line}"
    quoted = [r.getMessage() for r in caplog.records if "boom" in r.getMessage()]
    assert quoted and all("\n" not in line for line in quoted), quoted
    assert all(repr(f"boom{fake_line}") in line for line in quoted)


def test_forged_graphs_past_the_recorders_bounds_are_refused(client: TestClient) -> None:
    passes = json.dumps({"device": "cpu", "backward": [{"root": [], "steps": []}] * 200})
    status, body = trace(
        client, lie(answer({"type": "Graph", "bytes": len(passes)}, passes.encode()))
    )
    assert status == 422 and body["detail"]["type"] == "BadAnswer"
    assert "backward passes" in body["detail"]["message"]
    dangling = json.dumps({"device": "cpu", "edges": [{"id": "e", "source": "a", "target": "b"}]})
    status, body = trace(
        client, lie(answer({"type": "Graph", "bytes": len(dangling)}, dangling.encode()))
    )
    assert status == 422 and body["detail"]["type"] == "BadAnswer"
    deep = b"[" * 5000
    status, body = trace(client, lie(answer({"type": "Graph", "bytes": len(deep)}, deep)))
    assert status == 422 and body["detail"]["type"] == "BadAnswer"
    # within the bounds, a forged graph is only a graph: the server lays it out like any other
    empty = b'{"device": "cpu"}'
    status, body = trace(client, lie(answer({"type": "Graph", "bytes": len(empty)}, empty)))
    assert status == 200 and body["nodes"] == [] and body["device"] == "cpu"
    serves_a_lesson(client)


def test_a_worker_is_free_once_its_answer_is_whole(client: TestClient) -> None:
    """A program that replaces os._exit with a sleep is ended all the same (the wall-clock
    limit here is 600 s: only ending it on the answer frees it)."""
    pool = client.app.state.service.pool
    parent = pool.worker_parent_pid
    wait_for(lambda: len(parent_children(parent)) == SPARE_CHILDREN)
    status, body = trace(client, SLEEP_INSTEAD_OF_EXIT.replace("os.", "import os, time\nos.", 1))
    assert status == 200 and body["error"] is None
    wait_for(lambda: len(parent_children(parent)) == SPARE_CHILDREN)
    # a forged whole answer, then a program that never ends: the answer alone frees the worker
    # (had the program ended, the runner's own answer could follow the forged one on a slow
    # machine, before the server read the first, and make it a BadAnswer)
    status, _ = trace(
        client,
        lie(answer({"type": "Graph", "bytes": 17}, b'{"device": "cpu"}'), "time.sleep(3600)"),
    )
    assert status == 200
    wait_for(lambda: len(parent_children(parent)) == SPARE_CHILDREN)
    serves_a_lesson(client)


FORGED_OUTPUT = st.one_of(
    st.binary(max_size=300),
    st.builds(
        lambda header, body: json.dumps(header).encode() + b"\n" + body,
        HEADERS.filter(lambda h: _json_ok(h)),
        st.binary(max_size=40) | st.just(b'{"device": "cpu"}'),
    ),
)


def _json_ok(header: dict) -> bool:
    try:
        json.dumps(header, allow_nan=False)
    except ValueError:
        return False
    return True


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(output=FORGED_OUTPUT, then=st.sampled_from([EXIT, GO_ON]))
def test_whatever_a_child_writes_the_answer_is_from_the_closed_set(
    client: TestClient, output: bytes, then: str
) -> None:
    trace(client, lie(output, then))
    assert client.get("/api/v1/health").json()["workers_ok"] is True


def test_the_lessons_still_run_after_every_lie(client: TestClient) -> None:
    serves_a_lesson(client)
    assert client.app.state.service.pool.restarts == 0


class _Stop(BaseException):
    """Stands for whatever might end the reader thread."""


def test_a_reader_that_stops_is_noticed_and_the_pool_rebuilt(client: TestClient) -> None:
    pool = client.app.state.service.pool

    def broken(*args: object) -> bool:
        del pool._on_event  # only once: the rebuilt reader reads normally
        raise _Stop("the reader's end")

    pool._on_event = broken
    # in flight as the reader stops (Unavailable), or sent while it is rebuilt (Busy)
    status, body = trace(client, SAFE_PROGRAM)
    assert status == 503 and body["detail"]["type"] in ("Unavailable", "Busy")
    wait_for(lambda: pool.restarts == 1 and pool.alive)
    health = client.get("/api/v1/health").json()
    assert health["workers_ok"] is True and health["workers_restarts"] == 1
    assert "_Stop" in health["workers_problem"] and "reader's end" in health["workers_problem"]
    serves_a_lesson(client)
