"""Folded repeats: trace + layout of LSTMCell × 50 and a 48-layer encoder (d_model 128), with the
repeats folded (the first view) and with every group expanded ('*'): boxes drawn and seconds.

Wall-clock seconds, the fewest of --repeat runs (dot runs in a process of its own). The fully
expanded encoder is more than the layout's box cap, so it is folded back to the iterations that
fit, and the row says how many opened.
Run: .venv/bin/python -m benchmarks.folding [--repeat N] [--markdown]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import torch

from app.layout import layout_graph
from app.schemas import Graph
from app.tracing import trace_code

LSTM_CELL_X50 = """import torch
import torch.nn as nn
torch.manual_seed(0)
cell = nn.LSTMCell(32, 64)
xs = torch.randn(50, 4, 32)
h = torch.zeros(4, 64)
c = torch.zeros(4, 64)
for t in range(50):
    h, c = cell(xs[t], (h, c))
loss = h.pow(2).mean()
loss.backward()
"""

ENCODER_48 = """import torch
import torch.nn as nn
torch.manual_seed(0)
layer = nn.TransformerEncoderLayer(128, 4, dim_feedforward=256, dropout=0.0, batch_first=True)
encoder = nn.TransformerEncoder(layer, num_layers=48, enable_nested_tensor=False)
x = torch.randn(2, 8, 128)
loss = encoder(x).pow(2).mean()
loss.backward()
"""

# per program: its code and its views (the groups opened): folded, the fold open, everything
CASES = {
    "LSTMCell × 50": (
        LSTM_CELL_X50,
        {"folded": [], "fold open": ["fold:line:9"], "expanded all": ["*"]},
    ),
    "encoder-48 (d_model 128)": (
        ENCODER_48,
        {"folded": ["layers"], "fold open": ["layers", "fold:layers.0"], "expanded all": ["*"]},
    ),
}


@dataclass
class Figure:
    """One program in one view: its size and what drawing it took."""

    case: str
    view: str
    nodes: int
    boxes: int
    trace_s: float
    layout_s: float
    note: str


def best(repeat: int, run):  # noqa: ANN001, ANN202 - a timing helper
    """The fewest wall seconds of repeat runs, and the last run's result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return min(times), result


def measure(case: str, code: str, views: dict[str, list[str]], repeat: int) -> list[Figure]:
    """The case traced, then laid out in every view."""
    trace_s, graph = best(repeat, lambda: trace_code(code))
    assert isinstance(graph, Graph) and graph.error is None, graph.error
    figures = []
    for view, expanded in views.items():
        layout_s, layout = best(repeat, lambda e=expanded: layout_graph(graph, e))
        note = "; ".join(
            f"folded back: {m.params['open']} iterations open" if m.key == "foldedLater" else m.key
            for m in layout.messages
        )
        figures.append(
            Figure(case, view, len(graph.nodes), len(layout.nodes), trace_s, layout_s, note)
        )
    return figures


def measure_all(repeat: int = 3) -> list[Figure]:
    """Every case in every view."""
    torch.set_num_threads(1)
    return [f for case, (code, views) in CASES.items() for f in measure(case, code, views, repeat)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--markdown", action="store_true", help="the table as Markdown")
    args = parser.parse_args()
    header = ["program", "view", "nodes", "boxes", "trace s", "layout s", "trace + layout s"]
    rows = [
        [
            f.case,
            f.view + (f" ({f.note})" if f.note else ""),
            f"{f.nodes:,}",
            f"{f.boxes:,}",
            f"{f.trace_s:.2f}",
            f"{f.layout_s:.2f}",
            f"{f.trace_s + f.layout_s:.2f}",
        ]
        for f in measure_all(args.repeat)
    ]
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
