"""Running dot: its memory, CPU and priority limits, typed failures and one process per core."""

from __future__ import annotations

import os
import shutil

import pytest

from app.dot_run import DOT_SLOTS, DotFailed, DotLimits, LayoutBusy, run_dot
from app.errors import LimitExceeded


@pytest.mark.parametrize("wrapped", [True, False], ids=["prlimit", "preexec_fn"])
def test_dot_runs_with_memory_cpu_and_priority_limits(fake_dot, monkeypatch, wrapped) -> None:
    if not wrapped:  # a system without util-linux's prlimit
        real_which = shutil.which
        monkeypatch.setattr(
            shutil, "which", lambda name: None if name == "prlimit" else real_which(name)
        )
    elif shutil.which("prlimit") is None:
        pytest.skip("prlimit is not installed")
    fake_dot("cat >/dev/null; echo $(ulimit -v) $(ulimit -t) $(ulimit -c) $(nice)")
    out = run_dot("digraph G {}", "json0", DotLimits(seconds=7, memory_mb=300))
    memory_kb, cpu_s, core, niceness = out.split()
    assert int(memory_kb) == 300 * 1024 and int(cpu_s) == 8 and int(core) == 0
    assert int(niceness) == min(19, os.nice(0) + 10)


def test_dot_past_its_time_is_layout_time(fake_dot) -> None:
    fake_dot("exec sleep 600")
    with pytest.raises(LimitExceeded) as hit:
        run_dot("digraph G {}", "json0", DotLimits(seconds=0.5))
    assert hit.value.limit == "layout_time"
    fake_dot("kill -XCPU $$")  # what RLIMIT_CPU sends
    with pytest.raises(LimitExceeded) as hit:
        run_dot("digraph G {}", "json0", DotLimits(seconds=5))
    assert hit.value.limit == "layout_time"


def test_dot_out_of_memory_is_layout_memory_and_other_failures_are_typed(fake_dot) -> None:
    fake_dot("echo 'out of memory' >&2; kill -SEGV $$")
    with pytest.raises(LimitExceeded) as hit:
        run_dot("digraph G {}", "json0", DotLimits(memory_mb=100))
    assert hit.value.limit == "layout_memory" and "100 MB" in hit.value.message
    fake_dot("echo 'syntax error in line 1' >&2; exit 1")
    with pytest.raises(DotFailed, match="syntax error"):
        run_dot("digraph G {}")


def test_no_more_dot_processes_than_slots(fake_dot) -> None:
    fake_dot("cat >/dev/null; echo done")
    taken = 0
    while DOT_SLOTS.acquire(blocking=False):
        taken += 1
    try:
        assert taken == len(os.sched_getaffinity(0))
        with pytest.raises(LayoutBusy):
            run_dot("digraph G {}", "json0", DotLimits(seconds=0.05))
    finally:
        for _ in range(taken):
            DOT_SLOTS.release()
    assert run_dot("digraph G {}", "json0").strip() == b"done"
