"""Time trace_tensors against torchviz make_dot on the same graphs, in one run, as ratios.

Run: .venv/bin/python -m benchmarks.trace_vs_torchviz [--repeat N]
"""

from __future__ import annotations

import argparse
import time

import torch
from torchviz import make_dot

from app.recorder import trace_tensors
from benchmarks.models import MODELS, count_nodes


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, best of {args.repeat}")
    header = (
        "graph",
        "nodes",
        "make_dot",
        "make_dot+saved",
        "trace",
        "trace fwd",
        "ratio",
        "ratio saved",
        "fwd ratio",
    )
    print("{:12} {:>6} {:>9} {:>14} {:>7} {:>9} {:>6} {:>11} {:>9}".format(*header))
    for name, build in MODELS.items():
        loss, model = build()
        params = dict(model.named_parameters())
        nodes = count_nodes(loss)
        viz = best_of(args.repeat, lambda loss=loss, params=params: make_dot(loss, params=params))
        viz_saved = best_of(
            args.repeat,
            lambda loss=loss, params=params: make_dot(
                loss, params=params, show_attrs=True, show_saved=True
            ),
        )
        ours = best_of(
            args.repeat, lambda loss=loss, model=model: trace_tensors(loss, names={"model": model})
        )
        fwd = best_of(
            args.repeat,
            lambda loss=loss, model=model: trace_tensors(
                loss, names={"model": model}, backward=False
            ),
        )
        print(
            f"{name:12} {nodes:6d} {viz:9.3f} {viz_saved:14.3f} {ours:7.3f} {fwd:9.3f} "
            f"{ours / viz:6.1f} {ours / viz_saved:11.2f} {fwd / viz:9.1f}"
        )


if __name__ == "__main__":
    main()
