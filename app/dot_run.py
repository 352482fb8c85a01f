"""Running graphviz's dot on a DOT source: within time and memory limits, at most one per core."""

from __future__ import annotations

import math
import os
import resource
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass

from app import dot_spare
from app.errors import LimitExceeded

DOT_NICE = 10  # dot yields the CPU to the server and to short traces


INSTALL_HINT = (
    "graphviz's 'dot' was not found: install graphviz (Debian/Ubuntu: apt-get install graphviz; "
    "macOS: brew install graphviz) to see graph layouts"
)


class LayoutUnavailable(Exception):
    """graphviz's dot is not installed."""


class LayoutBusy(Exception):
    """Every dot slot stayed taken for longer than a layout may wait (HTTP 503)."""


class DotFailed(Exception):
    """dot exited with an error that is neither a time nor a memory limit."""


@dataclass(frozen=True)
class DotLimits:
    """Bounds of one dot run: wall and CPU seconds, address space, visible edges."""

    seconds: float = 20.0
    memory_mb: int = 1024
    max_edges: int = 20_000
    max_cost: int = 4_000  # layout_cost past which dot is not started


# One dot per core at a time, for the whole process: a layout past that waits for a slot.
DOT_SLOTS = threading.BoundedSemaphore(len(os.sched_getaffinity(0)) or 1)


def dot_available() -> bool:
    """Whether graphviz's dot is on PATH."""
    return shutil.which("dot") is not None


def _dot_rlimits(limits: DotLimits) -> Callable[[], None]:
    """A preexec_fn that bounds dot's address space and CPU time and lowers its priority."""
    memory, cpu = _limit_values(limits)

    def apply() -> None:  # runs in the forked child before exec: plain system calls only
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.nice(DOT_NICE)

    return apply


def _limit_values(limits: DotLimits) -> tuple[int, int]:
    """Address-space bytes and CPU seconds of one dot run."""
    return limits.memory_mb * 1024 * 1024, max(1, math.ceil(limits.seconds) + 1)


def dot_command(fmt: str, limits: DotLimits) -> tuple[list[str], Callable[[], None] | None]:
    """The argv that runs dot within limits, and the preexec_fn it needs, if any.

    util-linux's prlimit and coreutils' nice set the limits when present: then the server,
    a large process, is not forked with a Python preexec_fn (measured: 50 ms against 28 ms
    per run for a small graph). Without them the limits are set in a preexec_fn."""
    prlimit, nice = shutil.which("prlimit"), shutil.which("nice")
    if prlimit is None or nice is None:
        return ["dot", f"-T{fmt}"], _dot_rlimits(limits)
    memory, cpu = _limit_values(limits)
    wrapper = [prlimit, f"--as={memory}", f"--cpu={cpu}:{cpu + 1}", "--core=0", "--"]
    return [*wrapper, nice, "-n", str(DOT_NICE), "dot", f"-T{fmt}"], None


def run_dot(source: str, fmt: str = "json0", limits: DotLimits | None = None) -> bytes:
    """Output of graphviz dot for a DOT source, run within limits, at most one per core.

    A json0 layout takes the warm spare dot of its command when one waits (app.dot_spare), and
    leaves a new one warming up for the next layout.

    LimitExceeded('layout_time' | 'layout_memory'), LayoutBusy when no slot frees in time,
    DotFailed for any other error of dot."""
    if not dot_available():
        raise LayoutUnavailable(INSTALL_HINT)
    limits = limits or DotLimits()
    if not DOT_SLOTS.acquire(timeout=limits.seconds):
        raise LayoutBusy(f"every layout slot stayed busy for {limits.seconds:g} s")
    argv, preexec = dot_command(fmt, limits)
    key = (tuple(argv), limits, dot_spare.dot_fingerprint())
    try:
        process = dot_spare.SPARES.take(key) or dot_spare.start_dot(argv, preexec)
        try:
            stdout, stderr = process.communicate(
                source.encode("utf-8", "replace"), timeout=limits.seconds
            )
        except subprocess.TimeoutExpired:
            dot_spare.discard(process)
            raise _time_limit(limits) from None
    finally:
        DOT_SLOTS.release()
        if fmt == "json0":  # the next layout finds a warm dot waiting
            dot_spare.SPARES.refill(key, argv, preexec, limits.seconds)
    if process.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        raise _time_limit(limits)
    if process.returncode != 0:
        error = stderr.decode(errors="replace")
        if process.returncode < 0 or "memory" in error.lower() or "alloc" in error.lower():
            raise LimitExceeded(
                "layout_memory",
                f"graphviz needed more than {limits.memory_mb} MB: collapse modules",
            )
        raise DotFailed(f"graphviz failed: {error[:300]}")
    return stdout


def _time_limit(limits: DotLimits) -> LimitExceeded:
    return LimitExceeded(
        "layout_time", f"graphviz took longer than {limits.seconds:g} s: collapse modules"
    )
