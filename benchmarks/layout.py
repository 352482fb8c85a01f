"""First view (trace + layout of the collapsed view) against torchviz make_dot + dot -Tsvg on the
flat graph, in one run, as ratios; plus the time to expand one module.

Run: .venv/bin/python -m benchmarks.layout [--dot-timeout S]
"""

from __future__ import annotations

import argparse
import subprocess
import time

import torch
from torchviz import make_dot

from app.layout import layout_graph
from app.recorder import trace_callable
from benchmarks.models import ResNet18, count_nodes, encoder

BUILDERS = {
    "resnet18": (lambda: ResNet18(), lambda: torch.randn(2, 3, 32, 32), "layers"),
    "encoder-6": (lambda: encoder(6), lambda: torch.randn(2, 8, 32), "layers"),
    "encoder-24": (lambda: encoder(24), lambda: torch.randn(2, 8, 32), "layers"),
    "encoder-48": (lambda: encoder(48), lambda: torch.randn(2, 8, 32), "layers"),
}


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def record(model, x):
    """The explorer's recording of one forward and backward of the model."""
    return trace_callable(lambda: model(x).pow(2).mean(), names={"model": model})


def torchviz_svg(loss, params, timeout: float) -> float | None:
    """Seconds for make_dot + dot -Tsvg on the flat graph; None past the timeout."""
    start = time.perf_counter()
    source = make_dot(loss, params=params).source
    try:
        subprocess.run(
            ["dot", "-Tsvg"],
            input=source.encode(),
            capture_output=True,
            check=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return None
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dot-timeout", type=float, default=300)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}; times in seconds")
    print(
        f"{'graph':12} {'nodes':>6} {'torchviz+dot':>13} {'first view':>11} {'(trace':>8} {'layout)':>8} {'ratio':>7} {'expand':>8} {'boxes':>6}"
    )
    for name, (build, data, module) in BUILDERS.items():
        torch.manual_seed(0)
        model = build()
        x = data()
        loss = model(x).pow(2).mean()
        nodes = count_nodes(loss)
        viz = torchviz_svg(loss, dict(model.named_parameters()), args.dot_timeout)
        trace_s, (graph, _) = timed(record, model, x)
        layout_s, first = timed(layout_graph, graph, [])
        expand_s, opened = timed(layout_graph, graph, [module])
        ours = trace_s + layout_s
        viz_text = f"{viz:13.2f}" if viz is not None else f"{'>' + str(int(args.dot_timeout)):>13}"
        ratio = (
            f"{ours / viz:7.3f}" if viz else f"{'<' + format(ours / args.dot_timeout, '.3f'):>7}"
        )
        print(
            f"{name:12} {nodes:6d} {viz_text} {ours:11.3f} {trace_s:8.3f} {layout_s:8.3f} {ratio} {expand_s:8.3f} {len(first.nodes):3d}/{len(opened.nodes):<3d}"
        )


if __name__ == "__main__":
    main()
