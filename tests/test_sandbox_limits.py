"""The operating-system layer: a child that applied the limits cannot write, fork, exec or connect."""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import platform
import resource
import sys
import threading
from pathlib import Path

import pytest

from app.sandbox.limits import MAX_THREADS, ChildLimits, apply
from app.sandbox.worker_parent import collect_child

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="Linux limits")


def attempt(label: str, action) -> tuple[str, str]:
    try:
        action()
        return label, "allowed"
    except BaseException as exc:  # noqa: BLE001 - any refusal counts
        return label, type(exc).__name__


def run_limited(tmp_path: Path, outside: Path) -> dict:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            layers = apply(
                ChildLimits(cpu_seconds=5, memory_margin_bytes=512 * 2**20, work_dir=str(tmp_path))
            )
            import socket
            import subprocess

            results = dict(
                [
                    attempt("write_outside", lambda: open(outside, "w").write("x")),
                    attempt("write_inside", lambda: open(tmp_path / "f.txt", "w").write("x")),
                    attempt(
                        "append_existing",
                        lambda: open(outside.parent / "existing.txt", "a").write("x"),
                    ),
                    attempt("mkdir", lambda: os.mkdir(outside.parent / "newdir")),
                    attempt("unlink", lambda: os.unlink(outside.parent / "existing.txt")),
                    attempt("fork", lambda: os.fork() or None),
                    attempt("exec", lambda: subprocess.run(["/bin/true"], check=True)),
                    attempt("socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM)),
                    attempt("kill_parent", lambda: os.kill(os.getppid(), 0)),
                    attempt("big_alloc", lambda: bytearray(2 * 1024**3)),
                    attempt("read_file", lambda: open("/etc/hostname").read()),
                ]
            )
            os.write(write_fd, json.dumps({"layers": layers, "results": results}).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    return json.loads(collect_child(pid, read_fd))


def test_child_limits(tmp_path: Path) -> None:
    outside_dir = tmp_path / "outside"
    outside_dir.mkdir()
    (outside_dir / "existing.txt").write_text("keep")
    work = tmp_path / "work"
    work.mkdir()
    report = run_limited(work, outside_dir / "created.txt")
    layers, results = report["layers"], report["results"]
    assert layers["cpu_time"] and layers["file_size"] and layers["memory"]
    for name in (
        "write_outside",
        "write_inside",
        "append_existing",
        "mkdir",
        "unlink",
        "big_alloc",
    ):
        assert results[name] != "allowed", name
    if layers["seccomp"]:
        for name in ("fork", "exec", "socket", "kill_parent"):
            assert results[name] != "allowed", name
    assert results["read_file"] == "allowed"
    assert not (outside_dir / "created.txt").exists()
    assert not (outside_dir / "newdir").exists()
    assert (outside_dir / "existing.txt").read_text() == "keep"
    assert list(work.iterdir()) == []


def test_a_long_run_drops_to_idle_priority(tmp_path: Path) -> None:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            limits = ChildLimits(
                cpu_seconds=30,
                memory_margin_bytes=None,
                work_dir=str(tmp_path),
                idle_after_cpu_seconds=0.2,
            )
            apply(limits)
            before = os.sched_getscheduler(0)
            start = os.times()
            while os.times().user + os.times().system - start.user - start.system < 0.6:
                pass  # burn CPU time, however long that takes on this machine
            after = os.sched_getscheduler(0)
            os.write(
                write_fd, json.dumps([before, after, os.getpriority(os.PRIO_PROCESS, 0)]).encode()
            )
        finally:
            os._exit(0)
    os.close(write_fd)
    before, after, nice = json.loads(collect_child(pid, read_fd))
    assert before == os.SCHED_OTHER and after == os.SCHED_IDLE and nice == 19


def test_a_limited_child_cannot_reach_other_processes(tmp_path: Path) -> None:
    """Signals, limits and scheduling of another process: each refused, harmless if not."""
    parent = os.getpid()
    tkill = {"x86_64": 200, "aarch64": 130}.get(platform.machine())
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            layers = apply(
                ChildLimits(cpu_seconds=5, memory_margin_bytes=None, work_dir=str(tmp_path))
            )
            libc = ctypes.CDLL(None, use_errno=True)

            def libc_call(name: str, *args: object) -> int:
                if libc[name](*args) == -1:
                    raise OSError(ctypes.get_errno(), name)
                return 0

            pipe_r, _ = os.pipe()
            nice = os.getpriority(os.PRIO_PROCESS, parent)
            # signal 0 and unchanged values: a filter that let these through would harm nothing
            attempts = [
                ("kill", lambda: os.kill(parent, 0)),
                ("tgkill", lambda: libc_call("tgkill", parent, parent, 0)),
                ("sigqueue", lambda: libc_call("sigqueue", parent, 0, None)),
                ("pidfd_open", lambda: os.close(os.pidfd_open(parent))),
                ("set_owner", lambda: fcntl.fcntl(pipe_r, fcntl.F_SETOWN, parent)),
                ("prlimit", lambda: resource.prlimit(parent, resource.RLIMIT_CORE)),
                ("renice", lambda: os.setpriority(os.PRIO_PROCESS, parent, nice)),
                ("affinity", lambda: os.sched_setaffinity(parent, os.sched_getaffinity(parent))),
                ("scheduler", lambda: os.sched_setparam(parent, os.sched_getparam(parent))),
            ]
            # IPC objects outlive the child: looked up without creating, so refusal is EPERM
            # and a filter that allowed them would only report ENOENT
            key = 0x41450001
            attempts += [
                ("shmget", lambda: libc_call("shmget", key, 4096, 0)),
                ("msgget", lambda: libc_call("msgget", key, 0)),
                ("semget", lambda: libc_call("semget", key, 1, 0)),
                ("mq_open", lambda: libc_call("mq_open", b"/ae-no-such-queue", os.O_RDONLY)),
            ]
            if tkill is not None:
                attempts.append(("tkill", lambda: libc_call("syscall", tkill, parent, 0)))
            own = [
                ("own_signal", lambda: os.kill(os.getpid(), 0)),
                ("own_limit", lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 0))),
                (
                    "own_nice",
                    lambda: os.setpriority(os.PRIO_PROCESS, 0, os.getpriority(os.PRIO_PROCESS, 0)),
                ),
                ("own_affinity", lambda: os.sched_setaffinity(0, os.sched_getaffinity(0))),
            ]
            results = dict(attempt(label, action) for label, action in attempts + own)
            os.write(
                write_fd, json.dumps({"seccomp": layers["seccomp"], "results": results}).encode()
            )
        finally:
            os._exit(0)
    os.close(write_fd)
    report = json.loads(collect_child(pid, read_fd))
    if not report["seccomp"]:
        pytest.skip("seccomp is not available here")
    results = report["results"]
    for label in ("own_signal", "own_limit", "own_nice", "own_affinity"):
        assert results.pop(label) == "allowed", label
    assert len(results) >= 13
    for label, outcome in results.items():
        assert outcome == "PermissionError", (label, outcome)


def test_a_child_cannot_start_a_thread_bomb() -> None:
    """RLIMIT_NPROC bounds a child's threads (for a uid that is not root; root is exempt)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            if os.getuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            layers = apply(ChildLimits(cpu_seconds=5, memory_margin_bytes=None, work_dir="/tmp"))
            threading.stack_size(64 * 1024)
            release = threading.Event()
            started: list[threading.Thread] = []
            try:
                for _ in range(4 * MAX_THREADS):
                    thread = threading.Thread(target=release.wait)
                    thread.start()
                    started.append(thread)
            except RuntimeError:
                pass
            release.set()
            for thread in started:
                thread.join()
            os.write(write_fd, json.dumps([layers["threads"], len(started)]).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    enforced, started = json.loads(collect_child(pid, read_fd))
    assert enforced is True
    assert 0 < started < MAX_THREADS
