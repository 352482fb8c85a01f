"""Spare dot processes: warm before a layout, used for one graph only, with the same limits."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from app import dot_spare
from app.dot_run import DotLimits, dot_command, run_dot
from app.errors import LimitExceeded
from app.layout import layout_graph
from app.tracing import trace_code
from tests.conftest import SAFE_PROGRAM

pytestmark = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz dot is not installed")

# A stand-in dot: answers the warm-up graph (its first line) with JSON, then prints its limits
# and its process id for the graph after it.
ANSWERS_WARM_UP = "read line; echo '{}'; cat >/dev/null"
PRINTS_ITSELF = "; echo $(ulimit -v) $(ulimit -t) $(ulimit -c) $(nice) $$"


def key_of(limits: DotLimits) -> tuple[object, ...]:
    """The key under which run_dot keeps a spare for json0 layouts with these limits."""
    return (tuple(dot_command("json0", limits)[0]), limits, dot_spare.dot_fingerprint())


def spare_of(limits: DotLimits) -> subprocess.Popen[bytes] | None:
    """The spare for json0 layouts with these limits, once its start has settled (or None)."""
    dot_spare.SPARES.settle()
    return dot_spare.SPARES._spares.get(key_of(limits))


@pytest.fixture(autouse=True)
def no_spares_left_behind():
    """Each test starts and ends without spares of another test's stand-in dot."""
    dot_spare.SPARES.close()
    yield
    dot_spare.SPARES.close()


def test_a_layout_leaves_a_warm_spare_that_the_next_layout_uses_once() -> None:
    limits = DotLimits(seconds=11)
    graph = trace_code(SAFE_PROGRAM)
    first = layout_graph(graph, limits=limits)
    spare = spare_of(limits)
    assert spare is not None and spare.poll() is None
    second = layout_graph(graph, limits=limits)
    assert second == first
    assert spare.wait(timeout=10) == 0  # it laid out one graph and exited
    replacement = spare_of(limits)
    assert replacement is not None and replacement.pid != spare.pid


def test_a_spare_runs_with_the_same_limits_and_answers_only_the_graph_after_warm_up(
    fake_dot,
) -> None:
    if shutil.which("prlimit") is None:
        pytest.skip("prlimit is not installed")
    fake_dot(ANSWERS_WARM_UP + PRINTS_ITSELF)
    limits = DotLimits(seconds=7, memory_mb=300)
    run_dot("digraph G {}\n", "json0", limits)  # a fresh dot; its spare starts after it
    spare = spare_of(limits)
    assert spare is not None
    out = run_dot("digraph G {}\n", "json0", limits)
    memory_kb, cpu_s, core, niceness, pid = out.split()  # nothing of the warm-up's answer
    assert int(memory_kb) == 300 * 1024 and int(cpu_s) == 8 and int(core) == 0
    assert int(niceness) == min(19, os.nice(0) + 10)
    assert int(pid) == spare.pid


def test_a_spare_past_its_time_is_layout_time(fake_dot) -> None:
    fake_dot("read line; echo '{}'; exec sleep 600")
    limits = DotLimits(seconds=0.5)
    with pytest.raises(LimitExceeded):  # the fresh dot
        run_dot("digraph G {}\n", "json0", limits)
    spare = spare_of(limits)
    assert spare is not None
    with pytest.raises(LimitExceeded) as hit:
        run_dot("digraph G {}\n", "json0", limits)
    assert hit.value.limit == "layout_time"
    assert spare.poll() is not None  # stopped, not left behind


def test_a_dead_spare_is_not_used(fake_dot) -> None:
    fake_dot(ANSWERS_WARM_UP + PRINTS_ITSELF)
    limits = DotLimits(seconds=9)
    run_dot("digraph G {}\n", "json0", limits)
    spare = spare_of(limits)
    assert spare is not None
    spare.kill()
    spare.wait()
    pid = int(run_dot("digraph G {}\n", "json0", limits).split()[-1])
    assert pid != spare.pid  # a fresh dot laid it out, not the dead spare


def test_a_dot_that_does_not_warm_up_gets_no_spare(fake_dot) -> None:
    fake_dot("cat >/dev/null; echo done")
    limits = DotLimits(seconds=30)  # room to start on a loaded machine: this dot never hangs
    assert run_dot("digraph G {}", "json0", limits).strip() == b"done"
    assert spare_of(limits) is None
    assert run_dot("digraph G {}", "json0", limits).strip() == b"done"  # fresh each time
    assert spare_of(limits) is None
