"""The worker parent: one process (inside the jail of app.sandbox.jail when the host allows it)
that imported and warmed up torch once and forks one fresh, limited child per request.

It never sees a request's code, output or result. For each request the server hands it one end
of a socket pair (SCM_RIGHTS) with nothing but a job id. It keeps a spare child forked ahead of
time: the spare closed every other descriptor, limited itself (app.sandbox.limits) and waits on
a socket pair of its own; the worker parent passes it the request's socket (SCM_RIGHTS again)
and forks the next spare. The worker parent only starts, times, ends and reaps children and
reports how each ended; what a child does is app.sandbox.child.
"""

from __future__ import annotations

import dataclasses
import json
import os
import selectors
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from app.sandbox.child import detach_standard_streams, read_all, serve_one
from app.sandbox.pool_settings import PoolSettings
from app.sandbox.wire import Recording, receive, send

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
SPARE_CHILDREN = 1  # limited children kept forked ahead of requests (each serves one, then exits)
MAX_LOST_SPARES = 3  # spares ending unused this many times in a row: fork per request instead
ANSWERED = "answered"  # why a child is ended once the server holds its whole answer


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
    channel: socket.socket  # the worker parent's end
    work_dir: str


def main(control: socket.socket) -> None:
    """Entry point of the worker parent: warm up, report the layers, serve until closed."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server stops us by closing the socket
    import torch

    torch.set_num_threads(1)
    message, _ = receive(control)
    if message is None:
        return
    settings = PoolSettings.from_json(message["settings"])
    recording = Recording.from_names(message["recording"])
    _warm_up(settings, recording)
    parent = WorkerParent(control, settings, recording)
    layers = parent.probe_layers()
    send(control, {"ready": True, "layers": layers, "cuda": bool(torch.cuda.is_available())})
    parent.serve()


def _warm_up(settings: PoolSettings, recording: Recording) -> None:
    """Import and exercise everything a child needs, so that forks start warm."""
    from app.sandbox.limits import prepare_seccomp

    recording.rehearse(WARM_UP_PROGRAM, settings.recording)
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


class WorkerParent:
    """The worker parent's loop: hand requests to spare or fresh children, time and reap them."""

    def __init__(
        self, control: socket.socket, settings: PoolSettings, recording: Recording
    ) -> None:
        self.control = control
        self.settings = settings
        self.recording = recording
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
        limits = self.settings.child_limits
        margin = None if cuda else limits.memory_margin_bytes  # CUDA needs a large address space
        return dataclasses.replace(limits, memory_margin_bytes=margin, work_dir=work_dir, cuda=cuda)

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
            message, fds = receive(self.control)
        except OSError:
            return False
        if message is None:
            return False
        job_id = message.get("id")
        if message.get("op") == "run" and len(fds) == 1 and type(job_id) is int:
            self.waiting.append((job_id, fds[0], bool(message.get("cuda"))))
            return True
        for fd in fds:
            os.close(fd)
        if message.get("op") == "kill" and type(job_id) is int:
            reason = message.get("reason")
            self._kill_job(job_id, reason if reason == ANSWERED else "response_bytes")
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
        os.close(fd)  # the worker parent keeps nothing of the request, not even its socket
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
        """In a new child: close every descriptor of the worker parent and of other requests."""
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        # nothing of the server, the worker parent or another request stays reachable
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
        detach_standard_streams()

    def _spare_child(self, channel: socket.socket, parent_end: int, work_dir: str) -> None:
        """A spare: limit itself, wait for one request's socket, serve that request, exit."""
        status = 0
        try:
            os.close(parent_end)
            self._close_inherited({0, 1, 2, channel.fileno()})
            from app.sandbox import limits

            _warm_spare(self.settings, self.recording)
            limits.apply(self._limits(work_dir, cuda=False))  # before any request arrives
            _, fds, _, _ = socket.recv_fds(channel, 16, 1)
            channel.close()
            if len(fds) == 1:
                serve_one(fds[0], self.settings, self.recording)
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
            serve_one(fd, self.settings, self.recording)
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
            send(self.control, {"id": job_id, **report})
        except OSError:
            pass

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for child in self.running.values():
            if child.killed_for is None and now >= child.deadline:
                child.killed_for = "wall_time"
                os.kill(child.pid, signal.SIGKILL)


def _warm_spare(settings: PoolSettings, recording: Recording) -> None:
    """Record a constant lesson once, so that the pages a trace writes are this child's own.

    A forked child copies each page of the parent it writes to; a first trace pays for those
    copies (about as long as the trace itself). The spare pays them before any request. Only
    recorded, never written out: no answer JSON, not even this one, is left in memory that a
    request's program may be handed."""
    recording.rehearse(SPARE_WARM_UP_PROGRAM, settings.recording)


def collect_child(pid: int, read_fd: int) -> bytes:
    """Everything a forked child wrote to its pipe, once it has exited."""
    data = read_all(read_fd)
    os.close(read_fd)
    os.waitpid(pid, 0)
    return data


if __name__ == "__main__":
    main(socket.socket(fileno=int(sys.argv[1])))
