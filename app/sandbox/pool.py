"""A jailed worker parent that forks one fresh, limited child per trace.

The server starts one *zygote* (inside the jail of app.sandbox.jail when the host allows it). The
zygote imported and warmed up torch once; it never sees a request's code, output or result. For
each request the server makes a socket pair, keeps one end, and hands the other to the zygote
(SCM_RIGHTS) with nothing but a job id. The zygote keeps a spare child forked ahead of time:
it closed every other descriptor, limited itself (app.sandbox.limits) and waits on a socket
pair of its own; the zygote passes it the request's socket (SCM_RIGHTS again) and forks the
next spare. The child reads the request from that socket, records the program, writes
`header\\n body` back to the server directly and exits: a child serves one request, never two.
The zygote only starts, times and reaps children and reports how each ended.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import logging
import os
import queue
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
from typing import Any

from app.config import Settings
from app.sandbox import jail
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
SPARE_WARM_UP_PROGRAM = """import torch
import torch.nn as nn
w = torch.tensor([1.0, 2.0], requires_grad=True)
net = nn.Linear(2, 2)
y = torch.mul(torch.add(w, 1), net(w)).sum()
y.backward()
print("w.grad:", w.grad, y.grad_fn)
"""
CONTROL_MESSAGE_BYTES = 64 * 1024
REQUEST_SLACK_BYTES = 4096
SPARE_CHILDREN = 1  # limited children kept forked ahead of requests (each serves one, then exits)
MAX_LOST_SPARES = 3  # spares ending unused this many times in a row: fork per request instead


class PoolBusy(Exception):
    """The queue is full; the client should retry after a while."""


def _send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    data = json.dumps(message).encode()
    if fds:
        socket.send_fds(sock, [data], fds)
    else:
        sock.send(data)


def _receive(sock: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    """One control message and the descriptors sent with it; (None, []) when closed."""
    data, fds, _, _ = socket.recv_fds(sock, CONTROL_MESSAGE_BYTES, 4)
    if not data:
        for fd in fds:
            os.close(fd)
        return None, []
    return json.loads(data), fds


# ----- the server side -------------------------------------------------------------------------


@dataclass
class _Job:
    """A request in flight, as the server sees it."""

    id: int
    sock: socket.socket
    future: concurrent.futures.Future[bytes]
    output: bytearray = field(default_factory=bytearray)
    read_done: bool = False
    ended: dict[str, Any] | None = None
    too_big: bool = False


class WorkerPool:
    """The server's handle on the zygote: submit requests, get Graph JSON bytes back."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.layers: dict[str, bool] = {}
        self.cuda = False
        self.jail_status = jail.JailStatus(False, "not started")
        self._ids = itertools.count(1)
        self._jobs: dict[int, _Job] = {}
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._selector: selectors.BaseSelector | None = None
        self._wake_r, self._wake_w = os.pipe()
        self._new_jobs: list[_Job] = []
        self._closing = False
        self.restarts = 0

    @property
    def alive(self) -> bool:
        """Whether the zygote runs and answers."""
        return (
            self._process is not None and self._process.poll() is None and self._control is not None
        )

    @property
    def zygote_pid(self) -> int | None:
        """Process id of the zygote (of bubblewrap, when jailed)."""
        return self._process.pid if self._process is not None else None

    def _command(self, fd: int) -> list[str]:
        argv = [sys.executable, "-m", "app.sandbox.pool", str(fd)]
        if not self.settings.jail:
            self.jail_status = jail.JailStatus(False, "the jail is switched off (AE_JAIL=false)")
            return argv
        self.jail_status = jail.probe()
        if not self.jail_status.available:
            log.warning("running the workers WITHOUT a jail: %s", self.jail_status.reason)
            return argv
        return jail.jail_command(argv, gpu=self.settings.allow_cuda)

    def start(self, timeout: float = 180.0) -> None:
        """Start the zygote and wait until it has warmed up."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        process = _spawn_from_lasting_thread(self._command(theirs.fileno()), theirs.fileno())
        theirs.close()
        _send(ours, self.settings.model_dump(mode="json"))
        ours.settimeout(timeout)
        try:
            ready, _ = _receive(ours)
        except (TimeoutError, OSError):
            ready = None
        if ready is None:
            process.kill()
            process.wait()
            ours.close()
            raise RuntimeError("the worker parent failed to start; see its output above")
        ours.settimeout(None)
        self.layers = dict(ready["layers"], jail=self.jail_status.available)
        if self.jail_status.available:
            self.layers["network"] = True  # the jail owns an empty network namespace
        self.cuda = ready["cuda"]
        selector = selectors.DefaultSelector()
        selector.register(ours, selectors.EVENT_READ, None)
        selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._process, self._control, self._selector = process, ours, selector
        threading.Thread(
            target=self._read_loop, args=(selector, ours), daemon=True, name="ae-pool-reader"
        ).start()
        for layer, active in self.layers.items():
            if not active:
                log.warning("isolation layer '%s' is not available on this host", layer)

    def close(self) -> None:
        """Stop the zygote and its children."""
        self._closing = True
        if self._control is not None:
            try:
                self._control.shutdown(socket.SHUT_RDWR)  # tells the zygote to stop
            except OSError:
                pass
        if self._process is not None:
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        os.write(self._wake_w, b"x")
        self._fail_all(
            TraceFailure(
                503, ErrorDetail(type="Unavailable", message="the server is shutting down")
            )
        )

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
                job = _Job(next(self._ids), ours, future)
                self._jobs[job.id] = job
                self._new_jobs.append(job)
                control = self._control
            # memory limits fit CUDA only where the program will really start it
            wants_cuda = self.settings.allow_cuda and (
                request.device == "cuda" or (request.device == "auto" and self.cuda)
            )
            try:
                _send(control, {"op": "run", "id": job.id, "cuda": wants_cuda}, [theirs.fileno()])
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

    def _read_loop(self, selector: selectors.BaseSelector, control: socket.socket) -> None:
        """Read children's replies and the zygote's reports until the zygote stops."""
        while True:
            for key, _ in selector.select():
                if key.data == "wake":
                    os.read(self._wake_r, 4096)
                    self._register_new(selector)
                elif key.data is None:
                    try:
                        report, _ = _receive(control)
                    except OSError:
                        report = None
                    if report is None:
                        self._zygote_stopped(selector, control)
                        return
                    self._on_report(report)
                else:
                    self._on_output(key.data, selector)

    def _register_new(self, selector: selectors.BaseSelector) -> None:
        with self._lock:
            jobs, self._new_jobs = self._new_jobs, []
        for job in jobs:
            job.sock.setblocking(False)
            selector.register(job.sock, selectors.EVENT_READ, job)

    def _on_output(self, job: _Job, selector: selectors.BaseSelector) -> None:
        limit = self.settings.max_response_bytes + REQUEST_SLACK_BYTES
        try:
            chunk = job.sock.recv(1 << 20)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if chunk:
            job.output += chunk
            if len(job.output) <= limit:
                return
            job.too_big = True
            job.output = bytearray()
            self._kill(job.id)
        selector.unregister(job.sock)
        job.sock.close()
        job.read_done = True
        self._maybe_finish(job)

    def _kill(self, job_id: int) -> None:
        if self._control is not None:
            try:
                _send(self._control, {"op": "kill", "id": job_id})
            except OSError:
                pass

    def _on_report(self, report: dict[str, Any]) -> None:
        with self._lock:
            job = self._jobs.get(report["id"])
        if job is not None:
            job.ended = report
            self._maybe_finish(job)

    def _maybe_finish(self, job: _Job) -> None:
        # a complete answer needs no word of the child's exit: it may still be tearing down
        if not job.read_done or (job.ended is None and not _complete(job.output)):
            return
        with self._lock:
            self._jobs.pop(job.id, None)
        if job.future.done():
            return
        try:
            job.future.set_result(self._result(job))
        except TraceFailure as failure:
            job.future.set_exception(failure)

    def _result(self, job: _Job) -> bytes:
        settings = self.settings
        ended = job.ended or {}
        if job.too_big:
            raise limit_failure(
                "response_bytes",
                f"the recorded graph is over the limit of {settings.max_response_bytes} bytes "
                "(set AE_MAX_RESPONSE_BYTES to change it)",
            )
        if ended.get("killed_for") == "wall_time":
            raise limit_failure(
                "wall_time",
                f"the program ran longer than {settings.wall_seconds:g} s "
                "(set AE_WALL_SECONDS to change the limit)",
            )
        newline = job.output.find(b"\n")
        if newline >= 0:
            try:
                header = json.loads(job.output[:newline])
            except ValueError:
                header = None
            if header is not None:
                if header.get("status") == 200:
                    return bytes(job.output[newline + 1 :])
                if header.get("status") == 500:
                    log.error("a worker failed: %s", header["detail"].get("message"))
                raise TraceFailure(header["status"], ErrorDetail(**header["detail"]))
        if ended.get("signal") in (signal.SIGXCPU, signal.SIGKILL):
            raise limit_failure(
                "cpu_time",
                f"the program used more than {settings.cpu_seconds} s of CPU time "
                "(set AE_CPU_SECONDS to change the limit)",
            )
        reason = (
            f"signal {ended['signal']}"
            if ended.get("signal")
            else f"exit status {ended.get('exit')}"
        )
        raise TraceFailure(
            500,
            ErrorDetail(
                type="WorkerCrashed", message=f"the worker ended without a result ({reason})"
            ),
        )

    def _zygote_stopped(self, selector: selectors.BaseSelector, control: socket.socket) -> None:
        selector.close()
        control.close()
        with self._lock:
            self._control = None
        self._fail_all(
            TraceFailure(503, ErrorDetail(type="Unavailable", message="the worker parent stopped"))
        )
        if not self._closing:
            log.error("the worker parent stopped; starting a new one")
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
            try:
                job.sock.close()
            except OSError:
                pass
            if not job.future.done():
                job.future.set_exception(failure)


def _complete(output: bytearray) -> bool:
    """Whether a child's output is a whole answer: a header and exactly the body it announces."""
    newline = output.find(b"\n")
    if newline < 0:
        return False
    try:
        header = json.loads(output[:newline])
    except ValueError:
        return False
    return isinstance(header, dict) and header.get("bytes") == len(output) - newline - 1


def _spawn_from_lasting_thread(argv: list[str], fd: int) -> subprocess.Popen[bytes]:
    """Start the zygote from a thread that lives as long as it does.

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


# ----- the zygote ------------------------------------------------------------------------------


@dataclass
class _Child:
    """A child serving a request."""

    id: int
    pid: int
    work_dir: str
    deadline: float
    killed_for: str | None = None


@dataclass
class _Spare:
    """A limited child forked ahead of time, waiting on its channel for one request's socket."""

    pid: int
    channel: socket.socket  # the zygote's end
    work_dir: str


def zygote_main(control: socket.socket) -> None:
    """Entry point of the worker parent: warm up, report the layers, serve until closed."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server stops us by closing the socket
    import torch

    torch.set_num_threads(1)
    message, _ = _receive(control)
    if message is None:
        return
    settings = Settings.model_validate(message)
    _warm_up(settings)
    zygote = _Zygote(control, settings)
    layers = zygote.probe_layers()
    _send(control, {"ready": True, "layers": layers, "cuda": bool(torch.cuda.is_available())})
    zygote.serve()


def _warm_up(settings: Settings) -> None:
    """Import and exercise everything a child needs, so that forks start warm."""
    from app.sandbox.limits import prepare_seccomp

    _record_constant_lesson(WARM_UP_PROGRAM, settings)
    prepare_seccomp(cuda=False)  # building the filter costs more than forking: do it once
    if settings.allow_cuda:
        prepare_seccomp(cuda=True)
    try:  # matplotlib builds its font cache once, here, where /tmp is still writable
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        plt.figure()
        plt.close("all")
    except Exception as exc:  # figures are optional
        print(f"matplotlib is not usable in the workers: {exc!r}", file=sys.stderr)


class _Zygote:
    """The worker parent's loop: hand requests to spare or fresh children, time and reap them."""

    def __init__(self, control: socket.socket, settings: Settings) -> None:
        self.control = control
        self.settings = settings
        self.selector = selectors.DefaultSelector()
        self.waiting: list[tuple[int, int, bool]] = []  # (job id, child's socket fd, cuda)
        self.running: dict[int, _Child] = {}  # by pid
        self.spares: dict[int, _Spare] = {}  # by pid: limited children waiting for a request
        self.spares_lost = 0  # spares that ended before a request reached them, in a row
        self.lost: dict[int, str] = {}  # work dir by pid: spares that ended as one was handed
        self._signal_r, self._signal_w = os.pipe()
        os.set_blocking(self._signal_r, False)
        os.set_blocking(self._signal_w, False)

    def _limits(self, work_dir: str, cuda: bool) -> Any:
        from app.sandbox.limits import ChildLimits

        margin = None if cuda else self.settings.memory_margin_mb * 1024 * 1024
        return ChildLimits(
            self.settings.cpu_seconds,
            margin,
            work_dir,
            cuda,
            idle_after_cpu_seconds=self.settings.idle_after_cpu_seconds,
        )

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
        layers.update(language_policy=self.settings.language_layer, wall_time=True)
        layers["clean_memory"] = True  # children fork from a parent that never saw a request
        return layers

    def serve(self) -> None:
        """Answer the server's messages until it closes the control socket."""
        signal.set_wakeup_fd(self._signal_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        self.selector.register(self.control, selectors.EVENT_READ, "control")
        self.selector.register(self._signal_r, selectors.EVENT_READ, "signal")
        self._refill_spares()
        while True:
            timeout = None
            if self.running:
                earliest = min(c.deadline for c in self.running.values())
                timeout = max(0.0, earliest - time.monotonic())
            for key, _ in self.selector.select(timeout):
                if key.data == "control":
                    if not self._on_control():
                        self._shutdown()
                        return
                else:
                    try:
                        os.read(self._signal_r, 4096)
                    except BlockingIOError:
                        pass
            self._reap()
            self._enforce_deadlines()
            while self.waiting and len(self.running) < self.settings.workers:
                self._start(*self.waiting.pop(0))
            self._refill_spares()

    def _on_control(self) -> bool:
        try:
            message, fds = _receive(self.control)
        except OSError:
            return False
        if message is None:
            return False
        if message.get("op") == "run" and len(fds) == 1:
            self.waiting.append((message["id"], fds[0], bool(message.get("cuda"))))
            return True
        for fd in fds:
            os.close(fd)
        if message.get("op") == "kill":
            self._kill_job(message["id"], "response_bytes")
        return True

    def _kill_job(self, job_id: int, reason: str) -> None:
        for child in self.running.values():
            if child.id == job_id and child.killed_for is None:
                child.killed_for = reason
                os.kill(child.pid, signal.SIGKILL)
        for index, (waiting_id, fd, _) in enumerate(self.waiting):
            if waiting_id == job_id:
                os.close(fd)
                del self.waiting[index]
                self._report(job_id, {"killed_for": reason})
                break

    def _shutdown(self) -> None:
        for spare in list(self.spares.values()):
            spare.channel.close()  # a spare reads the end of its channel and exits
        for pid in [*self.running, *self.spares]:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass
        for child in [*self.running.values(), *self.spares.values()]:
            shutil.rmtree(child.work_dir, ignore_errors=True)
        for _, fd, _ in self.waiting:
            os.close(fd)

    def _refill_spares(self) -> None:
        """Fork spares up to SPARE_CHILDREN, unless spares keep ending before their request."""
        while len(self.spares) < SPARE_CHILDREN and self.spares_lost < MAX_LOST_SPARES:
            self._fork_spare()

    def _fork_spare(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        work_dir = tempfile.mkdtemp(prefix="ae-job-")
        pid = os.fork()
        if pid == 0:
            self._spare_child(theirs, ours.fileno(), work_dir)  # never returns
        theirs.close()
        self.spares[pid] = _Spare(pid, ours, work_dir)

    def _start(self, job_id: int, fd: int, cuda: bool) -> None:
        """Hand the request's socket to a spare child, or fork a fresh child for it."""
        pid, work_dir = (None, "") if cuda else self._hand_to_spare(fd)
        if pid is None:
            work_dir = tempfile.mkdtemp(prefix="ae-job-")
            pid = os.fork()
            if pid == 0:
                self._child(fd, work_dir, cuda)  # never returns
        os.close(fd)  # the zygote keeps nothing of the request, not even its socket
        deadline = time.monotonic() + self.settings.wall_seconds
        self.running[pid] = _Child(job_id, pid, work_dir, deadline)

    def _hand_to_spare(self, fd: int) -> tuple[int | None, str]:
        """Pass a request's socket to a waiting spare; (its pid, its work dir) or (None, '')."""
        while self.spares:
            spare = self.spares.pop(next(iter(self.spares)))
            try:
                socket.send_fds(spare.channel, [b"job"], [fd])
            except OSError:  # it ended meanwhile: the next reap collects it
                self.spares_lost += 1
                self.lost[spare.pid] = spare.work_dir
                continue
            finally:
                spare.channel.close()
            self.spares_lost = 0
            return spare.pid, spare.work_dir
        return None, ""

    def _close_inherited(self, keep: set[int]) -> None:
        """In a new child: close every descriptor of the zygote and of other requests."""
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        # nothing of the server, the zygote or another request stays reachable
        self.selector.close()
        for other in [
            self.control.fileno(),
            self._signal_r,
            self._signal_w,
            *(f for _, f, _ in self.waiting),
            *(spare.channel.fileno() for spare in self.spares.values()),
        ]:
            if other not in keep:
                try:
                    os.close(other)
                except OSError:
                    pass
        _detach_standard_streams()

    def _spare_child(self, channel: socket.socket, zygote_end: int, work_dir: str) -> None:
        """A spare: limit itself, wait for one request's socket, serve that request, exit."""
        status = 0
        try:
            os.close(zygote_end)
            self._close_inherited({0, 1, 2, channel.fileno()})
            from app.sandbox import limits

            _warm_spare(self.settings)
            limits.apply(self._limits(work_dir, cuda=False))  # before any request arrives
            _, fds, _, _ = socket.recv_fds(channel, 16, 1)
            channel.close()
            if len(fds) == 1:
                _serve_one(fds[0], self.settings)
        except BaseException:  # nothing may escape a forked child
            status = 1
        finally:
            os._exit(status)

    def _child(self, fd: int, work_dir: str, cuda: bool) -> None:
        """A fresh child for one request: limit itself, serve the request, exit."""
        status = 0
        try:
            self._close_inherited({0, 1, 2, fd})
            from app.sandbox import limits

            limits.apply(self._limits(work_dir, cuda))
            _serve_one(fd, self.settings)
        except BaseException:  # nothing may escape a forked child
            status = 1
        finally:
            os._exit(status)

    def _reap(self) -> None:
        while self.running or self.spares or self.lost:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            spare = self.spares.pop(pid, None)
            if spare is not None:  # ended before any request reached it: replaced in serve()
                spare.channel.close()
                shutil.rmtree(spare.work_dir, ignore_errors=True)
                self.spares_lost += 1
                continue
            if pid in self.lost:
                shutil.rmtree(self.lost.pop(pid), ignore_errors=True)
                continue
            child = self.running.pop(pid, None)
            if child is None:
                continue
            shutil.rmtree(child.work_dir, ignore_errors=True)
            report: dict[str, Any] = {
                "killed_for": child.killed_for,
                "cpu": usage.ru_utime + usage.ru_stime,
            }
            if os.WIFSIGNALED(status):
                report["signal"] = os.WTERMSIG(status)
            else:
                report["exit"] = os.WEXITSTATUS(status)
            self._report(child.id, report)

    def _report(self, job_id: int, report: dict[str, Any]) -> None:
        try:
            _send(self.control, {"id": job_id, **report})
        except OSError:
            pass

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for child in self.running.values():
            if child.killed_for is None and now >= child.deadline:
                child.killed_for = "wall_time"
                os.kill(child.pid, signal.SIGKILL)


def _warm_spare(settings: Settings) -> None:
    """Record a constant lesson once, so that the pages a trace writes are this child's own.

    A forked child copies each page of the parent it writes to; a first trace pays for those
    copies (about as long as the trace itself). The spare pays them before any request."""
    _record_constant_lesson(SPARE_WARM_UP_PROGRAM, settings)


def _record_constant_lesson(code: str, settings: Settings) -> None:
    """Record a constant program as a request would be, without writing its answer: no answer
    JSON, not even this one, is left in memory that a request's program may be handed."""
    from app.sandbox.runner import trace_program
    from app.tracing import options_from

    trace_program(code, "cpu", 0, options_from(settings))


def _serve_one(fd: int, settings: Settings) -> None:
    """Read one request from its socket, record it, write `header\\n body` back and close."""
    request = _read_all(fd)
    header, body = _run_in_child(request, settings)
    header["bytes"] = len(body)
    _write_all(fd, json.dumps(header).encode() + b"\n" + body)
    os.close(fd)  # the server has its answer now, before this process's memory is torn down


def _failure(failure: TraceFailure) -> tuple[dict[str, Any], bytes]:
    return {"status": failure.status, "detail": failure.detail.model_dump(exclude_none=True)}, b""


def _run_in_child(data: bytes, settings: Settings) -> tuple[dict[str, Any], bytes]:
    from app.tracing import trace_to_json

    try:
        request = TraceRequest.model_validate_json(data)
        if request.device in ("cuda", "auto"):
            _limit_cuda_memory(settings.cuda_memory_fraction)
        return {"status": 200}, trace_to_json(request, settings)
    except TraceFailure as failure:
        return _failure(failure)
    except MemoryError:
        return _failure(limit_failure("memory", "the program ran out of its memory limit"))
    except Exception as exc:  # a bug of the explorer, not of the program: report, don't hang
        return _failure(
            TraceFailure(500, ErrorDetail(type="InternalError", message=str(exc)[:500]))
        )


def _detach_standard_streams() -> None:
    """Point descriptors 0-2 at /dev/null: the server's log is not the program's to write to.

    A child inherits the server's stdout and stderr through bubblewrap and the zygote; its
    program's output comes back in the response, so nothing it writes may reach or flood the log.
    """
    null = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1, 2):
        os.dup2(null, target)
    if null > 2:
        os.close(null)


def _limit_cuda_memory(fraction: float) -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.set_per_process_memory_fraction(fraction)


def collect_child(pid: int, read_fd: int) -> bytes:
    """Everything a forked child wrote to its pipe, once it has exited."""
    data = _read_all(read_fd)
    os.close(read_fd)
    os.waitpid(pid, 0)
    return data


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


if __name__ == "__main__":
    zygote_main(socket.socket(fileno=int(sys.argv[1])))
