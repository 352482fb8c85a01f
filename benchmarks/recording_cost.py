"""What recording costs against the program itself: six workloads, each recorder as a ratio.

Run: .venv/bin/python -m benchmarks.recording_cost [--repeat N] [--sweep] [--markdown]

For each workload, in one process with one torch thread, the methods take turns in every round
and the median of --repeat rounds is kept (CPU seconds of this process): the program's own
forward + backward (plain), `trace_tensors` on the live loss (with `values=False` too where the
recorder accepts it), torchviz `make_dot` on the same loss, and torchview `draw_graph` (which
runs the forward itself) where it is installed. --sweep adds how the cost grows with tensor
size (an MLP's width) and with graph size (a chain's length).
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torchviz import make_dot

from app.recorder import TraceOptions, trace_tensors
from benchmarks.models import BasicBlock, encoder

try:
    from torchview import draw_graph
except ImportError:  # an optional peer
    draw_graph = None

HAS_VALUES_FLAG = "values" in inspect.signature(trace_tensors).parameters


class Neuron(nn.Module):
    """micrograd's neuron: tanh(x1·w1 + x2·w2 + b), every value a scalar."""

    def __init__(self) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.tensor(-3.0))
        self.w2 = nn.Parameter(torch.tensor(1.0))
        self.b = nn.Parameter(torch.tensor(6.8813735870195432))

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x1 * self.w1 + x2 * self.w2 + self.b)


class MLPLoss(nn.Module):
    """A two-layer MLP classifier and its cross-entropy loss."""

    def __init__(self, features: int = 8, hidden: int = 16, classes: int = 3) -> None:
        super().__init__()
        self.fc1 = nn.Linear(features, hidden)
        self.fc2 = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(self.fc2(torch.relu(self.fc1(x))), labels)


class EncoderLoss(nn.Module):
    """A transformer encoder of torch.nn and the mean square of its output."""

    def __init__(self, layers: int, d_model: int) -> None:
        super().__init__()
        self.encoder = encoder(layers, d_model)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.encoder(tokens).pow(2).mean()


class LSTMLoss(nn.Module):
    """An LSTMCell unrolled over every step of a sequence, and the mean square of its last h."""

    def __init__(self, features: int = 32, hidden: int = 64) -> None:
        super().__init__()
        self.cell = nn.LSTMCell(features, hidden)

    def forward(self, xs: torch.Tensor) -> torch.Tensor:
        h = xs.new_zeros(xs.shape[1], self.cell.hidden_size)
        c = xs.new_zeros(xs.shape[1], self.cell.hidden_size)
        for x in xs:
            h, c = self.cell(x, (h, c))
        return h.pow(2).mean()


class ResNet18Loss(nn.Module):
    """ResNet-18 as torchvision lays it out (7×7 stem, max pool, 64–512 channels, 2-2-2-2 basic
    blocks), and the mean log-sum-exp of its 1,000 logits."""

    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, 7, 2, 3, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.MaxPool2d(3, 2, 1),
        )
        layers, cin = [], 64
        for i, stride in enumerate([1, 2, 2, 2]):
            cout = 64 * 2**i
            layers.append(nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.head = nn.Linear(cin, classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(self.stem(images)).mean(dim=(2, 3))).logsumexp(1).mean()


class Chain(nn.Module):
    """y = y * 1.0001, ops times: a graph as long as it gets, of one-element tensors."""

    def __init__(self, ops: int) -> None:
        super().__init__()
        self.ops = ops

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        for _ in range(self.ops):
            y = y * 1.0001
        return y


@dataclass
class Workload:
    """A model whose forward returns the loss, and the inputs it is run on."""

    name: str
    model: nn.Module
    inputs: tuple[torch.Tensor, ...]

    def loss(self) -> torch.Tensor:
        return self.model(*self.inputs)


def workloads() -> list[Workload]:
    """The six workloads of the recording-cost table, at their sizes, seeded."""
    torch.manual_seed(0)
    return [
        Workload(
            "micrograd neuron",
            Neuron(),
            (torch.tensor(2.0, requires_grad=True), torch.tensor(0.0, requires_grad=True)),
        ),
        Workload(
            "MLP + cross-entropy, batch 8", MLPLoss(), (torch.randn(8, 8), torch.arange(8) % 3)
        ),
        Workload(
            "24-layer encoder, d_model 128, seq 16, batch 2",
            EncoderLoss(24, 128),
            (torch.randn(2, 16, 128),),
        ),
        Workload("LSTMCell × 50", LSTMLoss(), (torch.randn(50, 4, 32),)),
        Workload("ResNet-18 on 1×3×64×64", ResNet18Loss(), (torch.randn(1, 3, 64, 64),)),
        Workload("chain of 1,000 ops", Chain(1000), (torch.ones(1, requires_grad=True),)),
    ]


def plain(workload: Workload) -> None:
    """The program's own forward and backward."""
    workload.loss().backward()


def methods(workload: Workload, peers: bool = True) -> dict[str, Callable[[], object]]:
    """Every way of running or recording the workload, by column name; the recorders take a
    loss built once, torchview its own forward."""
    loss = workload.loss()
    names = {"model": workload.model}
    params = dict(workload.model.named_parameters())
    options = TraceOptions(max_nodes=100_000)
    found: dict[str, Callable[[], object]] = {
        "plain": lambda: plain(workload),
        "trace_tensors": lambda: trace_tensors(loss, names=names, options=options),
    }
    if HAS_VALUES_FLAG:
        found["values=False"] = lambda: trace_tensors(
            loss, names=names, options=options, values=False
        )
    found["make_dot"] = lambda: make_dot(loss, params=params)
    if peers and draw_graph is not None:
        found["torchview"] = lambda: draw_graph(
            workload.model, input_data=list(workload.inputs), depth=100, expand_nested=True
        )
    return found


def median_seconds(runs: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median CPU seconds of each run, all of them taking turns in every round."""
    for run in runs.values():  # warm-up: first-call costs are not part of the figure
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            start = time.process_time()
            run()
            times[name].append(time.process_time() - start)
    return {name: statistics.median(values) for name, values in times.items()}


@dataclass
class Measured:
    """Median seconds of every method on one workload."""

    workload: str
    seconds: dict[str, float]

    def ratio(self, method: str, anchor: str) -> float | None:
        if method not in self.seconds or not self.seconds.get(anchor):
            return None
        return self.seconds[method] / self.seconds[anchor]


def measure(repeat: int, chosen: list[Workload] | None = None) -> list[Measured]:
    """The median seconds of every method on every workload."""
    torch.set_num_threads(1)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))  # make_dot recurses per node
    return [Measured(w.name, median_seconds(methods(w), repeat)) for w in chosen or workloads()]


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


RATIOS = (
    ("trace_tensors", "plain"),
    ("trace_tensors", "make_dot"),
    ("values=False", "make_dot"),
    ("torchview", "plain"),
)


def table(results: list[Measured]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: milliseconds of each method measured, then the ratios among them."""
    measured = list(results[0].seconds)
    ratios = [(a, b) for a, b in RATIOS if a in measured and b in measured]
    header = ["workload", *(f"{name} ms" for name in measured)]
    header += [f"{a} ÷ {b}" for a, b in ratios]
    rows = [
        [
            m.workload,
            *(f"{1e3 * m.seconds[name]:.2f}" for name in measured),
            *(_ratio(m.ratio(a, b)) for a, b in ratios),
        ]
        for m in results
    ]
    return header, rows


def print_rows(header: list[str], rows: list[list[str]], markdown: bool) -> None:
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|---|" + "---:|" * (len(header) - 1))
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    for row in (header, *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def sweep(repeat: int) -> list[Measured]:
    """trace_tensors against plain as tensors grow (an MLP batch 8, widths 16 to 1,024, four
    layers) and as the graph grows (chains of 100 to 3,000 one-element ops)."""
    chosen = []
    torch.manual_seed(0)
    for width in (16, 64, 256, 1024):
        model = nn.Sequential(
            *(nn.Sequential(nn.Linear(width, width), nn.Tanh()) for _ in range(4))
        )
        chosen.append(Workload(f"MLP width {width}", _MeanSquare(model), (torch.randn(8, width),)))
    for side in (16, 64, 256):
        model = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1), nn.ReLU(), nn.Conv2d(16, 16, 3, 1, 1))
        images = torch.randn(1, 3, side, side)
        chosen.append(Workload(f"two convs on {side}×{side}", _MeanSquare(model), (images,)))
    for ops in (100, 300, 1000, 3000):
        chosen.append(
            Workload(f"chain of {ops:,} ops", Chain(ops), (torch.ones(1, requires_grad=True),))
        )
    return [Measured(w.name, median_seconds(methods(w, peers=False), repeat)) for w in chosen]


class _MeanSquare(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).pow(2).mean()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--sweep", action="store_true", help="also the growth with size")
    parser.add_argument("--markdown", action="store_true", help="tables as Markdown")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))  # make_dot recurses per node
    print(f"torch {torch.__version__}, one torch thread, median of {args.repeat}, CPU ms")
    print_rows(*table(measure(args.repeat)), args.markdown)
    if args.sweep:
        print()
        print_rows(*table(sweep(args.repeat)), args.markdown)


if __name__ == "__main__":
    main()
