"""What a training iteration costs after the recorded passes, as a ratio to a plain run.

The loop is traced at two lengths and run plainly at the same two lengths; the difference
between the lengths cancels start-up, imports and the recorded passes, leaving the cost of the
iterations the recorder only counts (loss and parameter norms for the training plot).
Usage: python -m benchmarks.unrecorded_iterations [--short 500] [--long 2500]
"""

from __future__ import annotations

import argparse
import time

from app.tracing import trace_code

LOOP = """import torch
import torch.nn as nn
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.01)
x = torch.randn(32, 8)
y = torch.randn(32, 1)
for step in range({steps}):
    opt.zero_grad()
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    opt.step()
"""


def plain(steps: int) -> float:
    """CPU seconds of the loop run by plain Python and torch."""
    code = compile(LOOP.format(steps=steps), "<plain>", "exec")
    start = time.process_time()
    exec(code, {})  # noqa: S102 - the benchmark's own program
    return time.process_time() - start


def traced(steps: int) -> float:
    """CPU seconds of the loop traced in-process (8 passes recorded, the rest counted)."""
    start = time.process_time()
    trace_code(LOOP.format(steps=steps))
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--short", type=int, default=500)
    parser.add_argument("--long", type=int, default=2500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    traced(20), plain(20)  # imports and first calls
    ratios = []
    for _ in range(args.repeats):
        plain_cost = plain(args.long) - plain(args.short)
        traced_cost = traced(args.long) - traced(args.short)
        ratios.append(traced_cost / plain_cost)
    ratios.sort()
    steps = args.long - args.short
    print(
        f"{steps} unrecorded iterations, traced / plain CPU time: median {ratios[len(ratios) // 2]:.2f}x "
        f"(runs: {', '.join(f'{r:.2f}' for r in ratios)}); aim 1.5x"
    )


if __name__ == "__main__":
    main()
