"""A structure-only recording, `trace_tensors(..., values=False)`, against torchviz `make_dot` on
the six workloads of benchmarks.recording_cost: the fewest CPU milliseconds of each (this
thread's), the two taking turns in every round, and their ratio (aim: at most 1.5×)."""

from __future__ import annotations

import argparse
import sys
import time

import torch

from benchmarks.recording_cost import methods, workloads


def fewest_ms(runs: dict[str, object], repeat: int) -> dict[str, float]:
    """The fewest CPU milliseconds of each run, all of them taking turns in every round."""
    for run in runs.values():  # warm-up: first-call costs are not part of the figure
        run()  # type: ignore[operator]
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeat):
        for name, run in runs.items():
            start = time.thread_time()
            run()  # type: ignore[operator]
            best[name] = min(best[name], (time.thread_time() - start) * 1000)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=15)
    repeat = parser.parse_args().repeat
    torch.set_num_threads(1)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))  # make_dot recurses per node
    print("| workload | values=False ms | make_dot ms | values=False ÷ make_dot |")
    print("|---|---:|---:|---:|")
    for workload in workloads():
        found = methods(workload, peers=False)
        best = fewest_ms({k: found[k] for k in ("values=False", "make_dot")}, repeat)
        ratio = best["values=False"] / best["make_dot"]
        print(
            f"| {workload.name} | {best['values=False']:.2f} | {best['make_dot']:.2f} "
            f"| {ratio:.2f}× |"
        )


if __name__ == "__main__":
    main()
