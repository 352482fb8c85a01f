"""What each part of a recording costs, on the six workloads of benchmarks.recording_cost: the
median CPU milliseconds of the program's plain forward + backward, of `trace_tensors`, of
`trace_tensors` with its chain-rule text left out, with its previews (heatmaps, histograms)
left out too, of a structure-only recording and of torchviz `make_dot` on the same loss, all
taking turns in every round; each recording as a ratio to the plain run. Only `trace_tensors`
and `values=False` are what the explorer records: the others switch a part off for this
measurement alone, to show what the rest costs (the recording's floor)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

import torch

import app.recorder.recorder as recorder_module
from app.tensor_summary import SummaryBatch
from benchmarks.recording_cost import Workload, median_seconds, methods, workloads

TINY_BELOW, TINY_EXTRA = 0.001, 0.002  # the aim: 3× plain, 2 ms more for a program under 1 ms
RECORDINGS = ("trace_tensors", "no rules", "no rules, no previews", "values=False")
COLUMNS = ("plain", *RECORDINGS, "make_dot")


@contextlib.contextmanager
def without_rules() -> Iterator[None]:
    """Recordings made inside leave out the chain-rule text of their backward steps."""
    attach = recorder_module.attach_rules
    recorder_module.attach_rules = lambda graph: None
    try:
        yield
    finally:
        recorder_module.attach_rules = attach


@contextlib.contextmanager
def without_previews() -> Iterator[None]:
    """Tensor summaries made inside keep their statistics and leave out heatmaps and histograms."""
    add = SummaryBatch.add

    def statistics_only(self: SummaryBatch, t: torch.Tensor, preview: bool = True) -> Any:
        return add(self, t, False)

    SummaryBatch.add = statistics_only  # type: ignore[method-assign]
    try:
        yield
    finally:
        SummaryBatch.add = add  # type: ignore[method-assign]


def runs(workload: Workload) -> dict[str, Callable[[], object]]:
    """Each column's run of one workload: benchmarks.recording_cost's methods, and its
    trace_tensors again with parts switched off."""
    found = methods(workload, peers=False)
    record = found["trace_tensors"]

    def record_without_rules() -> object:
        with without_rules():
            return record()

    def record_statistics_only() -> object:
        with without_rules(), without_previews():
            return record()

    switched = {"no rules": record_without_rules, "no rules, no previews": record_statistics_only}
    return {name: switched.get(name) or found[name] for name in COLUMNS}


def row(name: str, seconds: dict[str, float]) -> str:
    """One markdown row: milliseconds of each column, each recording ÷ plain, trace_tensors ÷
    make_dot, and what the aim allows."""
    base = seconds["plain"]
    cells = [f"{1e3 * seconds[c]:.2f}" for c in COLUMNS]
    cells += [f"{seconds[c] / base:.1f}×" for c in RECORDINGS]
    cells.append(f"{seconds['trace_tensors'] / seconds['make_dot']:.1f}×")
    allowed = 3 * base + (TINY_EXTRA if base < TINY_BELOW else 0.0)
    return f"| {name} | {' | '.join(cells)} | {1e3 * allowed:.2f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=9)
    repeat = parser.parse_args().repeat
    torch.set_num_threads(1)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))
    ms = " | ".join(f"{c} ms" for c in COLUMNS)
    ratios = " | ".join(f"{c} ÷ plain" for c in RECORDINGS)
    print(f"| workload | {ms} | {ratios} | trace_tensors ÷ make_dot | allowed ms (3×, +2 tiny) |")
    print("|---|" + "---:|" * (len(COLUMNS) + len(RECORDINGS) + 2))
    for workload in workloads():
        print(row(workload.name, median_seconds(runs(workload), repeat)), flush=True)


if __name__ == "__main__":
    main()
