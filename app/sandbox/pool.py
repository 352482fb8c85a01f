"""The server's side of the sandbox: start the worker parent, hand it requests, read children's
answers as hostile input, and end each child once its answer is whole.

For each request the server makes a socket pair, keeps one end and hands the other to the worker
parent (app.sandbox.worker_parent) with nothing but a job id; a child forked there runs the
program (app.sandbox.child) and writes its answer on that socket (format: app.sandbox.wire).
One thread reads every answer; nothing a child writes can stop it, and if it stops all the
same, health says so and the worker parent is started again.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import os
import queue
import selectors
import socket
import subprocess
import sys
import threading
from typing import Any

from app.errors import TraceFailure, failure
from app.sandbox import jail
from app.sandbox.job import Job
from app.sandbox.pool_settings import PoolSettings
from app.sandbox.wire import (
    MAX_HEADER_BYTES,
    Recording,
    bad_answer,
    header_overdue,
    is_complete,
    receive,
    send,
)
from app.sandbox.worker_parent import ANSWERED, SPARE_CHILDREN
from app.schemas import TraceRequest

log = logging.getLogger("autograd_explorer.pool")

REQUEST_SLACK_BYTES = 4096

__all__ = ["SPARE_CHILDREN", "PoolBusy", "Recording", "WorkerParentHandle"]


class PoolBusy(Exception):
    """The queue is full; the client should retry after a while."""


class WorkerParentHandle:
    """The server's handle on the worker parent: submit requests, get Graph JSON bytes back."""

    def __init__(self, settings: PoolSettings, recording: Recording) -> None:
        self.settings = settings
        self.recording = recording
        self.layers: dict[str, bool] = {}
        self.cuda = False
        self.jail_status = jail.JailStatus(False, "not started")
        self._ids = itertools.count(1)
        self._jobs: dict[int, Job] = {}
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._selector: selectors.BaseSelector | None = None
        self._reader: threading.Thread | None = None
        self._wake_r, self._wake_w = os.pipe()
        self._new_jobs: list[Job] = []
        self._closing = False
        self.restarts = 0
        self.problem: str | None = None  # why the reader or the worker parent last stopped

    @property
    def alive(self) -> bool:
        """Whether the worker parent runs and its answers are being read."""
        return (
            self._process is not None
            and self._process.poll() is None
            and self._control is not None
            and self._reader is not None
            and self._reader.is_alive()
        )

    @property
    def worker_parent_pid(self) -> int | None:
        """Process id of the worker parent (of bubblewrap, when jailed)."""
        return self._process.pid if self._process is not None else None

    def _command(self, fd: int) -> list[str]:
        argv = [sys.executable, "-m", "app.sandbox.worker_parent", str(fd)]
        if not self.settings.jail:
            self.jail_status = jail.JailStatus(False, "the jail is switched off (AE_JAIL=false)")
            return argv
        self.jail_status = jail.probe()
        if not self.jail_status.available:
            log.warning("running the workers WITHOUT a jail: %s", self.jail_status.reason)
            return argv
        return jail.jail_command(argv, gpu=self.settings.allow_cuda)

    def start(self, timeout: float = 180.0) -> None:
        """Start the worker parent and wait until it has warmed up."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        process = _spawn_from_lasting_thread(self._command(theirs.fileno()), theirs.fileno())
        theirs.close()
        start = {
            "settings": self.settings.to_json(),
            "recording": self.recording.names(),
        }
        send(ours, start)
        ours.settimeout(timeout)
        try:
            ready, _ = receive(ours)
        except (TimeoutError, OSError):
            ready = None
        if not ready or not isinstance(ready.get("layers"), dict):
            process.kill()
            process.wait()
            ours.close()
            raise RuntimeError("the worker parent failed to start; see its output above")
        ours.settimeout(None)
        self.layers = dict(ready["layers"], jail=self.jail_status.available)
        if self.jail_status.available:
            self.layers["network"] = True  # the jail owns an empty network namespace
        self.cuda = bool(ready.get("cuda"))
        selector = selectors.DefaultSelector()
        selector.register(ours, selectors.EVENT_READ, None)
        selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._process, self._control, self._selector = process, ours, selector
        self._reader = threading.Thread(
            target=self._read_loop, args=(selector, ours), daemon=True, name="ae-pool-reader"
        )
        self._reader.start()
        for layer, active in self.layers.items():
            if not active:
                log.warning("isolation layer '%s' is not available on this host", layer)

    def close(self) -> None:
        """Stop the worker parent and its children."""
        self._closing = True
        if self._control is not None:
            try:
                self._control.shutdown(socket.SHUT_RDWR)  # tells the worker parent to stop
            except OSError:
                pass
        if self._process is not None:
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        os.write(self._wake_w, b"x")
        self._fail_all(failure("Unavailable", "the server is shutting down"))

    def submit(self, request: TraceRequest) -> concurrent.futures.Future[bytes]:
        """Queue a trace; the future holds Graph JSON bytes or raises TraceFailure."""
        capacity = self.settings.workers + self.settings.queue_size
        data = request.model_dump_json().encode()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, len(data) + REQUEST_SLACK_BYTES)
            ours.sendall(data)  # fits the socket buffer: the child reads it when it starts
            ours.shutdown(socket.SHUT_WR)
            future: concurrent.futures.Future[bytes] = concurrent.futures.Future()
            with self._lock:
                if len(self._jobs) >= capacity:
                    raise PoolBusy(f"{len(self._jobs)} traces are running or waiting")
                if not self.alive or self._control is None:
                    raise PoolBusy("the worker parent is restarting")
                job = Job(next(self._ids), ours, future)
                self._jobs[job.id] = job
                self._new_jobs.append(job)
                control = self._control
            # memory limits fit CUDA only where the program will really start it
            wants_cuda = self.settings.allow_cuda and (
                request.device == "cuda" or (request.device == "auto" and self.cuda)
            )
            try:
                send(control, {"op": "run", "id": job.id, "cuda": wants_cuda}, [theirs.fileno()])
            except OSError:
                with self._lock:
                    self._jobs.pop(job.id, None)
                raise PoolBusy("the worker parent is restarting") from None
            os.write(self._wake_w, b"x")
            return future
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()

    # ----- the reader thread -------------------------------------------------------------------

    def _read_loop(self, selector: selectors.BaseSelector, control: socket.socket) -> None:
        """Read children's answers and the worker parent's reports until it stops.

        One bad event fails at most its own job; should the loop end any other way, the handle
        notes why and starts the worker parent again."""
        stopped = False
        why = "the thread reading answers stopped"
        try:
            while not stopped:
                for key, _ in selector.select():
                    if self._on_event(key, selector, control):
                        stopped = True
                        break
        except BaseException as exc:  # noqa: BLE001 - whatever it was, it starts again
            why = f"the thread reading answers stopped ({exc!r})"
        finally:
            if not stopped:
                self._stopped(selector, control, why)

    def _on_event(
        self, key: selectors.SelectorKey, selector: selectors.BaseSelector, control: socket.socket
    ) -> bool:
        """Handle one ready descriptor; True when the worker parent has stopped."""
        if key.data == "wake":
            os.read(self._wake_r, 4096)
            self._register_new(selector)
            return False
        if key.data is None:
            try:
                report, _ = receive(control)
            except OSError:
                report = None
            if report is None:
                self._stopped(selector, control, "the worker parent stopped")
                return True
            self._guarded(None, selector, self._on_report, report)
            return False
        job = key.data
        self._guarded(job, selector, self._on_output, job, selector)
        return False

    def _guarded(
        self, job: Job | None, selector: selectors.BaseSelector, handler: Any, *args: Any
    ) -> None:
        """Run one handler; an exception fails only its job (logged, quoted)."""
        try:
            handler(*args)
        except Exception as exc:
            log.error("reading a worker's answer failed: %r", exc)
            if job is not None:
                job.stop_reading(selector)
                self._kill(job.id, ANSWERED)
                self._finish(job, bad_answer(f"{type(exc).__name__}"))

    def _register_new(self, selector: selectors.BaseSelector) -> None:
        with self._lock:
            jobs, self._new_jobs = self._new_jobs, []
        for job in jobs:
            try:
                job.sock.setblocking(False)
                selector.register(job.sock, selectors.EVENT_READ, job)
            except (OSError, ValueError, KeyError) as exc:  # closed meanwhile (shutting down)
                self._finish(job, failure("Unavailable", repr(exc)))

    def _on_output(self, job: Job, selector: selectors.BaseSelector) -> None:
        limit = self.settings.max_response_bytes + MAX_HEADER_BYTES
        try:
            chunk = job.sock.recv(1 << 20)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if chunk:
            job.output += chunk
            if len(job.output) > limit:
                job.too_big = True
                job.output = bytearray()
                self._kill(job.id, "response_bytes")
            elif is_complete(job.output):  # whole: the child is ended, not trusted to exit
                self._kill(job.id, ANSWERED)
            elif not header_overdue(job.output):
                return
        job.stop_reading(selector)
        self._maybe_finish(job)

    def _kill(self, job_id: int, reason: str) -> None:
        if self._control is not None:
            try:
                send(self._control, {"op": "kill", "id": job_id, "reason": reason})
            except OSError:
                pass

    def _on_report(self, report: dict[str, Any]) -> None:
        job_id = report.get("id")
        with self._lock:
            job = self._jobs.get(job_id) if type(job_id) is int else None
        if job is not None:
            job.ended = report
            self._maybe_finish(job)

    def _maybe_finish(self, job: Job) -> None:
        # a complete answer needs no word of the child's exit: it is being ended
        if not job.read_done or (job.ended is None and not is_complete(job.output)):
            return
        self._finish(job, job.outcome(self.settings))

    def _finish(self, job: Job, result: bytes | TraceFailure) -> None:
        with self._lock:
            self._jobs.pop(job.id, None)
        job.settle(result)

    def _stopped(self, selector: selectors.BaseSelector, control: socket.socket, why: str) -> None:
        """The worker parent stopped, or its answers are no longer read: fail what is in
        flight (503) and start a new worker parent unless the server is closing."""
        try:
            selector.close()
            control.close()
        except OSError:
            pass
        with self._lock:
            if self._control is control:
                self._control = None
        self._fail_all(failure("Unavailable", why))
        if not self._closing:
            self.problem = why
            log.error("%s; starting a new worker parent", why)
            self._restart()

    def _restart(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self.restarts += 1
        try:
            self.start()
        except RuntimeError:
            log.exception("the worker parent could not be restarted")

    def _fail_all(self, failure: TraceFailure) -> None:
        with self._lock:
            jobs, self._jobs = self._jobs, {}
            self._new_jobs = []
        for job in jobs.values():
            job.settle(failure)


def _spawn_from_lasting_thread(argv: list[str], fd: int) -> subprocess.Popen[bytes]:
    """Start the worker parent from a thread that lives as long as it does.

    bubblewrap's --die-with-parent kills the jail when the *thread* that started it ends, and
    the server may call start() from a short-lived worker thread.
    """
    started: queue.Queue[subprocess.Popen[bytes] | BaseException] = queue.Queue()

    def keeper() -> None:
        try:
            process = subprocess.Popen(argv, pass_fds=[fd], stdin=subprocess.DEVNULL)
        except BaseException as exc:  # handed to the caller
            started.put(exc)
            return
        started.put(process)
        process.wait()

    threading.Thread(target=keeper, daemon=True, name="ae-pool-keeper").start()
    result = started.get()
    if isinstance(result, BaseException):
        raise result
    return result
