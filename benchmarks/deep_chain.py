"""Time per op of recording a deep chain (y = y * c, N times), ours against torchview.

Ours: the program traced in-process as `autograd-explorer trace` does (every op recorded up to
the node limit, here raised above the chain) and `trace_tensors` on the live chain. torchview:
`draw_graph` of a module that runs the same chain, without rendering. CPU seconds, one run each.
Usage: python -m benchmarks.deep_chain [--ops 10000 50000]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from app.recorder import TraceOptions, trace_tensors
from app.tracing import trace_code

PROGRAM = """import torch
x = torch.ones(1, requires_grad=True)
y = x
for i in range({ops}):
    y = y * 1.0001
y.backward()
"""


class Chain(nn.Module):
    """y = y * c, ops times."""

    def __init__(self, ops: int) -> None:
        super().__init__()
        self.ops = ops

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        for _ in range(self.ops):
            y = y * 1.0001
        return y


def cpu(work) -> float:
    start = time.process_time()
    work()
    return time.process_time() - start


def program_trace(ops: int) -> float:
    """CPU seconds of tracing the program (forward, backward pass, chain rules)."""
    options = TraceOptions(max_nodes=4 * ops)
    return cpu(lambda: trace_code(PROGRAM.format(ops=ops), options=options, wall_seconds=3600))


def tensors_trace(ops: int) -> float:
    """CPU seconds of trace_tensors on a live chain, without its backward pass."""
    y = Chain(ops)(torch.ones(1, requires_grad=True))
    options = TraceOptions(max_nodes=4 * ops)
    return cpu(lambda: trace_tensors(y, backward=False, options=options))


def torchview_trace(ops: int) -> float | None:
    """CPU seconds of torchview's draw_graph on the same chain; None without torchview."""
    try:
        from torchview import draw_graph
    except ImportError:
        return None
    return cpu(lambda: draw_graph(Chain(ops), input_size=(1,), save_graph=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, nargs="+", default=[10_000, 50_000])
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| ops | program trace µs/op | trace_tensors µs/op | torchview µs/op |")
    print("|---:|---:|---:|---:|")
    for ops in args.ops:
        view = torchview_trace(ops)
        ours = program_trace(ops)
        live = tensors_trace(ops)
        shown = "–" if view is None else f"{view / ops * 1e6:.0f}"
        print(f"| {ops} | {ours / ops * 1e6:.0f} | {live / ops * 1e6:.0f} | {shown} |", flush=True)


if __name__ == "__main__":
    main()
