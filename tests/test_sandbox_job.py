"""A request in flight: the server, not the child, decides what its end means."""

from __future__ import annotations

import concurrent.futures
import signal
import socket

from app.config import Settings
from app.errors import TraceFailure
from app.sandbox.job import Job


def job(**fields: object) -> Job:
    ours, theirs = socket.socketpair()
    theirs.close()
    return Job(1, ours, concurrent.futures.Future(), **fields)  # type: ignore[arg-type]


def test_limits_the_worker_parent_saw_come_before_what_the_child_wrote() -> None:
    settings = Settings().pool_settings()
    too_big = job(too_big=True, output=bytearray(b"{}"))
    outcome = too_big.outcome(settings)
    assert isinstance(outcome, TraceFailure) and outcome.status == 422
    assert outcome.detail.limit == "response_bytes"
    late = job(ended={"killed_for": "wall_time"}).outcome(settings)
    assert isinstance(late, TraceFailure) and late.detail.limit == "wall_time"
    cpu = job(ended={"signal": signal.SIGXCPU}).outcome(settings)
    assert isinstance(cpu, TraceFailure) and cpu.detail.limit == "cpu_time"


def test_a_child_that_ends_without_an_answer_is_a_crash_and_says_how_it_ended() -> None:
    crashed = job(ended={"signal": signal.SIGSEGV}).outcome(Settings().pool_settings())
    assert isinstance(crashed, TraceFailure) and crashed.detail.type == "WorkerCrashed"
    assert str(int(signal.SIGSEGV)) in crashed.detail.message or "SIGSEGV" in str(
        crashed.detail.message
    )


def test_a_job_is_settled_once_and_its_socket_closed() -> None:
    waiting = job()
    waiting.settle(b"first")
    waiting.settle(b"second")
    assert waiting.future.result() == b"first"
    assert waiting.sock.fileno() == -1
