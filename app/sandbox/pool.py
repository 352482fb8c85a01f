"""A pre-started worker parent that forks one fresh, limited child per trace.

The server talks to one *zygote* process over a pipe, in JSON bytes (never pickles). The zygote
imported and warmed up torch once; for every request it forks a child that limits itself
(app.sandbox.limits), traces the program and writes `header\\n body` back through a pipe. The
zygote kills a child that passes the wall-clock limit or the response size and keeps serving.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import logging
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from app.config import Settings
from app.schemas import ErrorDetail, TraceRequest
from app.tracing import TraceFailure, limit_failure

log = logging.getLogger("autograd_explorer.pool")

WARM_UP_PROGRAM = """import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2), nn.Sigmoid())
opt = optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
adam = optim.Adam(net.parameters())
x = torch.randn(5, 4)
for step in range(2):
    loss = F.cross_entropy(net(x), torch.tensor([0, 1, 0, 1, 1])) + nn.MSELoss()(net(x), x[:, :2])
    loss.backward()
    opt.step()
    adam.step()
    opt.zero_grad()
g = torch.autograd.grad((x.requires_grad_() ** 2).sum(), x, create_graph=True)
"""


class PoolBusy(Exception):
    """The queue is full; the client should retry after a while."""


# ----- the server side -------------------------------------------------------------------------


class WorkerPool:
    """The server's handle on the zygote: submit requests, get Graph JSON bytes back."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.layers: dict[str, bool] = {}
        self.cuda = False
        self._ids = itertools.count(1)
        self._pending: dict[int, concurrent.futures.Future[bytes]] = {}
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Any = None
        self._socket: socket.socket | None = None
        self._closing = False
        self.restarts = 0

    @property
    def alive(self) -> bool:
        """Whether the zygote runs and answers."""
        return self._process is not None and self._process.poll() is None and self._conn is not None

    @property
    def zygote_pid(self) -> int | None:
        """Process id of the zygote."""
        return self._process.pid if self._process is not None else None

    def start(self, timeout: float = 180.0) -> None:
        """Start the zygote and wait until it has warmed up."""
        ours, theirs = socket.socketpair()
        process = subprocess.Popen(
            [sys.executable, "-m", "app.sandbox.pool", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        conn = Connection(os.dup(ours.fileno()))
        conn.send_bytes(self.settings.model_dump_json().encode())
        if not conn.poll(timeout):
            process.kill()
            raise RuntimeError("the worker parent did not start in time")
        try:
            ready = json.loads(conn.recv_bytes())
        except EOFError:
            raise RuntimeError("the worker parent failed to start; see its output above") from None
        self.layers = ready["layers"]
        self.cuda = ready["cuda"]
        self._process, self._conn, self._socket = process, conn, ours
        threading.Thread(
            target=self._read_replies,
            args=(conn,),
            daemon=True,
            name="autograd-explorer-pool-reader",
        ).start()
        for layer, active in self.layers.items():
            if not active:
                log.warning("isolation layer '%s' is not available on this host", layer)

    def close(self) -> None:
        """Stop the zygote and its children."""
        self._closing = True
        if self._socket is not None:
            self._socket.shutdown(socket.SHUT_RDWR)  # wakes the reader and tells the zygote
            self._socket.close()
        if self._conn is not None:
            self._conn.close()
        if self._process is not None:
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._fail_pending(
            TraceFailure(
                503, ErrorDetail(type="Unavailable", message="the server is shutting down")
            )
        )

    def submit(self, request: TraceRequest) -> concurrent.futures.Future[bytes]:
        """Queue a trace; the future holds Graph JSON bytes or raises TraceFailure."""
        capacity = self.settings.workers + self.settings.queue_size
        future: concurrent.futures.Future[bytes] = concurrent.futures.Future()
        with self._lock:
            if len(self._pending) >= capacity:
                raise PoolBusy(f"{len(self._pending)} traces are running or waiting")
            if not self.alive:
                raise PoolBusy("the worker parent is restarting")
            job_id = next(self._ids)
            self._pending[job_id] = future
        message = {"id": job_id, **request.model_dump()}
        try:
            with self._send_lock:
                self._conn.send_bytes(json.dumps(message).encode())
        except (OSError, ValueError):
            with self._lock:
                self._pending.pop(job_id, None)
            raise TraceFailure(
                503, ErrorDetail(type="Unavailable", message="the worker parent is restarting")
            ) from None
        return future

    def _restart(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        if self._socket is not None:
            self._socket.close()
        self.restarts += 1
        try:
            self.start()
        except RuntimeError:
            log.exception("the worker parent could not be restarted")

    def _read_replies(self, conn: Any) -> None:
        while True:
            try:
                header = json.loads(conn.recv_bytes())
                body = conn.recv_bytes() if header.get("body") else b""
            except (EOFError, OSError):
                break
            with self._lock:
                future = self._pending.pop(header["id"], None)
            if future is None:
                continue
            if header["status"] == 200:
                future.set_result(body)
            else:
                future.set_exception(
                    TraceFailure(header["status"], ErrorDetail(**header["detail"]))
                )
        if not self._closing:
            log.error("the worker parent stopped; starting a new one")
            with self._lock:
                self._conn = None
            self._fail_pending(
                TraceFailure(
                    503, ErrorDetail(type="Unavailable", message="the worker parent stopped")
                )
            )
            self._restart()

    def _fail_pending(self, failure: TraceFailure) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(failure)


# ----- the zygote ------------------------------------------------------------------------------


@dataclass
class _Job:
    id: int
    pid: int
    fd: int
    work_dir: str
    deadline: float
    started: float
    output: bytearray = field(default_factory=bytearray)
    killed_for: str | None = None


def zygote_main(conn: Any) -> None:
    """Entry point of the worker parent: warm up, report the layers, serve until the pipe closes."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server stops us by closing the pipe
    import torch

    torch.set_num_threads(1)
    settings = Settings.model_validate_json(conn.recv_bytes())
    from app.sandbox.runner import USER_FILENAME  # noqa: F401  (imports the whole tracer)
    from app.tracing import trace_to_json

    trace_to_json(TraceRequest(code=WARM_UP_PROGRAM), settings)
    zygote = _Zygote(conn, settings)
    layers = zygote.probe_layers()
    conn.send_bytes(
        json.dumps(
            {"ready": True, "layers": layers, "cuda": bool(torch.cuda.is_available())}
        ).encode()
    )
    zygote.serve()


class _Zygote:
    def __init__(self, conn: Any, settings: Settings) -> None:
        self.conn = conn
        self.settings = settings
        self.selector = selectors.DefaultSelector()
        self.waiting: list[dict[str, Any]] = []
        self.running: dict[int, _Job] = {}  # by read fd

    def _limits(self, work_dir: str, cuda: bool) -> Any:
        from app.sandbox.limits import ChildLimits

        margin = None if cuda else self.settings.memory_margin_mb * 1024 * 1024
        return ChildLimits(self.settings.cpu_seconds, margin, work_dir, cuda)

    def probe_layers(self) -> dict[str, bool]:
        """Fork a child that applies every limit and reports which took effect."""
        from app.sandbox import limits

        work_dir = tempfile.mkdtemp(prefix="ae-probe-")
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(read_fd)
                layers = limits.apply(self._limits(work_dir, cuda=False))
                os.write(write_fd, json.dumps(layers).encode())
            finally:
                os._exit(0)
        os.close(write_fd)
        data = collect_child(pid, read_fd)
        shutil.rmtree(work_dir, ignore_errors=True)
        layers = json.loads(data) if data else {}
        layers.update(policy=True, capabilities=True, wall_time=True)
        return layers

    def serve(self) -> None:
        self.selector.register(self.conn.fileno(), selectors.EVENT_READ, None)
        while True:
            timeout = None
            if self.running:
                timeout = max(
                    0.0, min(j.deadline for j in self.running.values()) - time.monotonic()
                )
            for key, _ in self.selector.select(timeout):
                if key.data is None:
                    if not self._receive():
                        self._shutdown()
                        return
                else:
                    self._read_child(key.data)
            self._enforce_deadlines()
            while self.waiting and len(self.running) < self.settings.workers:
                self._start(self.waiting.pop(0))

    def _receive(self) -> bool:
        try:
            message = json.loads(self.conn.recv_bytes())
        except (EOFError, OSError):
            return False
        self.waiting.append(message)
        return True

    def _shutdown(self) -> None:
        for job in list(self.running.values()):
            os.kill(job.pid, signal.SIGKILL)
            os.waitpid(job.pid, 0)
            shutil.rmtree(job.work_dir, ignore_errors=True)

    def _start(self, message: dict[str, Any]) -> None:
        work_dir = tempfile.mkdtemp(prefix="ae-job-")
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            self._child(message, read_fd, write_fd, work_dir)  # never returns
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        now = time.monotonic()
        job = _Job(message["id"], pid, read_fd, work_dir, now + self.settings.wall_seconds, now)
        self.running[read_fd] = job
        self.selector.register(read_fd, selectors.EVENT_READ, job)

    def _child(self, message: dict[str, Any], read_fd: int, write_fd: int, work_dir: str) -> None:
        status = 0
        try:
            os.close(read_fd)
            for fd in [self.conn.fileno(), self.selector.fileno(), *self.running]:
                try:
                    os.close(fd)
                except OSError:
                    pass
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            from app.sandbox import limits

            cuda = message.get("device") in ("cuda", "auto")
            limits.apply(self._limits(work_dir, cuda))
            header, body = _run_in_child(message, self.settings)
            _write_all(write_fd, json.dumps(header).encode() + b"\n" + body)
        except BaseException:  # nothing may escape a forked child
            status = 1
        finally:
            os._exit(status)

    def _read_child(self, job: _Job) -> None:
        limit = self.settings.max_response_bytes + 4096
        try:
            while chunk := os.read(job.fd, 1 << 20):
                job.output += chunk
                if len(job.output) > limit and job.killed_for is None:
                    job.killed_for = "response_bytes"
                    os.kill(job.pid, signal.SIGKILL)
                    break
            else:
                self._finish(job)
        except BlockingIOError:
            pass

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for job in self.running.values():
            if job.killed_for is None and now >= job.deadline:
                job.killed_for = "wall_time"
                os.kill(job.pid, signal.SIGKILL)

    def _finish(self, job: _Job) -> None:
        self.selector.unregister(job.fd)
        os.close(job.fd)
        del self.running[job.fd]
        _, status = os.waitpid(job.pid, 0)
        shutil.rmtree(job.work_dir, ignore_errors=True)
        header, body = self._reply(job, status)
        header["id"] = job.id
        header["body"] = bool(body)
        try:
            self.conn.send_bytes(json.dumps(header).encode())
            if body:
                self.conn.send_bytes(body)
        except (OSError, ValueError):
            pass

    def _reply(self, job: _Job, status: int) -> tuple[dict[str, Any], bytes]:
        settings = self.settings
        if job.killed_for == "wall_time":
            return _failure(
                limit_failure(
                    "wall_time", f"the program ran longer than {settings.wall_seconds:g} s"
                )
            )
        if job.killed_for == "response_bytes":
            return _failure(
                limit_failure(
                    "response_bytes",
                    f"the recorded graph is over the limit of {settings.max_response_bytes} bytes",
                )
            )
        newline = job.output.find(b"\n")
        if newline >= 0:
            try:
                header = json.loads(job.output[:newline])
                return header, bytes(job.output[newline + 1 :])
            except ValueError:
                pass
        if os.WIFSIGNALED(status) and os.WTERMSIG(status) in (signal.SIGXCPU, signal.SIGKILL):
            return _failure(
                limit_failure(
                    "cpu_time", f"the program used more than {settings.cpu_seconds} s of CPU time"
                )
            )
        reason = (
            f"signal {os.WTERMSIG(status)}"
            if os.WIFSIGNALED(status)
            else f"exit status {os.WEXITSTATUS(status)}"
        )
        return _failure(
            TraceFailure(
                500,
                ErrorDetail(
                    type="WorkerCrashed", message=f"the worker ended without a result ({reason})"
                ),
            )
        )


def _failure(failure: TraceFailure) -> tuple[dict[str, Any], bytes]:
    return {"status": failure.status, "detail": failure.detail.model_dump(exclude_none=True)}, b""


def _run_in_child(message: dict[str, Any], settings: Settings) -> tuple[dict[str, Any], bytes]:
    from app.tracing import trace_to_json

    request = TraceRequest(code=message["code"], device=message["device"], seed=message["seed"])
    try:
        if request.device in ("cuda", "auto"):
            _limit_cuda_memory(settings.cuda_memory_fraction)
        return {"status": 200}, trace_to_json(request, settings)
    except TraceFailure as failure:
        return _failure(failure)
    except MemoryError:
        return _failure(limit_failure("memory", "the program ran out of its memory limit"))
    except Exception as exc:  # a bug of the explorer, not of the program: report, don't hang
        print(f"worker error: {exc!r}", file=sys.stderr)
        return _failure(
            TraceFailure(500, ErrorDetail(type="InternalError", message=str(exc)[:500]))
        )


def _limit_cuda_memory(fraction: float) -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.set_per_process_memory_fraction(fraction)


def collect_child(pid: int, read_fd: int) -> bytes:
    """Everything a forked child wrote to its pipe, once it has exited."""
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.close(read_fd)
    os.waitpid(pid, 0)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


if __name__ == "__main__":
    zygote_main(Connection(int(sys.argv[1])))
