"""The operating-system layer: a child that applied the limits cannot write, fork, exec or connect."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from app.sandbox.limits import ChildLimits, apply
from app.sandbox.pool import collect_child

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
