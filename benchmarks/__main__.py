"""Every benchmark of the explorer as ratios against anchors measured in the same run, one table.

Run: .venv/bin/python -m benchmarks [--repeat N] [--skip-cli] [--markdown] [--recording-cost-only]

Times are CPU seconds (user + system; of the whole process tree for command-line rows), the
fewest of --repeat runs, so that other work on a shared machine does not count (the recording
rows run anchor and ours in turn); the CUDA row is wall-clock. Rows: recording (trace_tensors against torchviz make_dot), first view and layout (against
torchviz + dot -Tsvg), whole command-line renders to SVG (against torchviz + dot in a process of
its own, or a plain run where dot does not finish), recording overhead against a plain run of
the same program, CUDA against CPU when a GPU is present, and API load when benchmarks/load.py
is there. The recording-cost rows (six workloads, benchmarks/recording_cost.py) keep the median
of --repeat rounds in which every method takes a turn; --recording-cost-only runs them alone.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch
from torchviz import make_dot

from app.layout import layout_graph
from app.lessons import get_lesson
from app.recorder import trace_tensors
from app.tracing import trace_code
from benchmarks.folding import LSTM_CELL_X50 as LSTM_PROGRAM
from benchmarks.layout import record
from benchmarks.models import MODELS, count_nodes, encoder
from benchmarks.recording_cost import measure as measure_recording_cost

# torchviz + dot on the flat graph, as one process: the anchor of a whole command-line render
TORCHVIZ_SCRIPT = """import subprocess, sys, torch
from torchviz import make_dot
namespace = {}
exec(compile(open(sys.argv[1]).read().replace("loss.backward()", ""), sys.argv[1], "exec"), namespace)
model = namespace.get("encoder") or namespace.get("cell")
source = make_dot(namespace["loss"], params=dict(model.named_parameters())).source
subprocess.run(["dot", "-Tsvg", "-o", sys.argv[2]], input=source.encode(), check=True)
"""


@dataclass
class Row:
    """One line of the table: our time, the anchor's, and the aim for their ratio."""

    measure: str
    ours: float | None
    anchor: str
    anchor_s: float | None
    aim: str = ""

    def ratio(self) -> str:
        if self.ours is None or not self.anchor_s:
            return "–"
        return f"{self.ours / self.anchor_s:.2f}×"


def cpu_seconds() -> float:
    """CPU seconds of this process and of the child processes it has waited for (dot)."""
    return time.process_time() + _children_cpu()


def best_of(
    repeat: int, fn: Callable[[], object], clock: Callable[[], float] = cpu_seconds
) -> float:
    """The shortest of repeat runs, in CPU seconds (or seconds of clock)."""
    times = []
    for _ in range(repeat):
        start = clock()
        fn()
        times.append(clock() - start)
    return min(times)


def best_of_pair(
    repeat: int, anchor: Callable[[], object], ours: Callable[[], object]
) -> tuple[float, float]:
    """The shortest of repeat runs of each, in CPU seconds, the two taking turns so that both
    see the same moments of a shared machine."""
    anchor_times, our_times = [], []
    for _ in range(repeat):
        for fn, times in ((anchor, anchor_times), (ours, our_times)):
            start = cpu_seconds()
            fn()
            times.append(cpu_seconds() - start)
    return min(anchor_times), min(our_times)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_seconds(command: list[str], timeout: float) -> float | None:
    """CPU seconds of a whole process and the processes it waited for; None past the timeout."""
    start = _children_cpu()
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    return _children_cpu() - start


def plain_run(code: str) -> None:
    """The program run by plain Python and torch, nothing recorded."""
    torch.manual_seed(0)
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(code, "<program>", "exec"), {"__name__": "program"})


def recording_rows(repeat: int) -> list[Row]:
    rows = []
    for name in ("encoder-24", "encoder-48"):
        loss, model = MODELS[name]()
        params = dict(model.named_parameters())
        viz, ours = best_of_pair(
            repeat,
            lambda loss=loss, params=params: make_dot(loss, params=params),
            lambda loss=loss, model=model: trace_tensors(loss, names={"model": model}),
        )
        aim = "≤ 5×" if name == "encoder-24" else ""
        label = f"trace_tensors, {name} ({count_nodes(loss)} nodes)"
        rows.append(Row(label, ours, "torchviz make_dot", viz, aim))
    return rows


def recording_cost_rows(repeat: int) -> list[Row]:
    """trace_tensors against the program's own forward + backward, and each recorder against its
    anchor, on the six workloads of benchmarks/recording_cost.py (medians)."""
    anchors = (
        ("trace_tensors", "plain", "plain forward + backward", "≤ 3× (+2 ms)"),
        ("trace_tensors", "make_dot", "torchviz make_dot", ""),
        ("values=False", "make_dot", "torchviz make_dot", "≤ 1.5×"),
        ("torchview", "plain", "plain forward + backward", ""),
    )
    rows = []
    for measured in measure_recording_cost(repeat):
        s = measured.seconds
        for method, anchor, label, aim in anchors:
            if method in s and anchor in s:
                measure = f"{method}, {measured.workload}"
                rows.append(Row(measure, s[method], label, s[anchor], aim))
    return rows


def view_rows(repeat: int, dot_timeout: float) -> list[Row]:
    torch.manual_seed(0)
    model, x = encoder(48), torch.randn(2, 8, 32)
    loss = model(x).pow(2).mean()
    source = make_dot(loss, params=dict(model.named_parameters())).source
    make_dot_s = best_of(repeat, lambda: make_dot(loss, params=dict(model.named_parameters())))
    with tempfile.NamedTemporaryFile("w", suffix=".dot") as handle:
        handle.write(source)
        handle.flush()
        dot_s = process_seconds(["dot", "-Tsvg", "-o", os.devnull, handle.name], dot_timeout)
    graph, _ = record(model, x)
    trace_s = best_of(repeat, lambda: record(model, x))
    layout_s = best_of(repeat, lambda: layout_graph(graph, []))
    anchor = make_dot_s + dot_s if dot_s is not None else None
    return [
        Row(
            "first view, encoder-48 (trace + layout)", trace_s + layout_s, "torchviz + dot", anchor
        ),
        Row("layout of the first view, encoder-48", layout_s, "dot -Tsvg of the flat graph", dot_s),
    ]


def cli_rows(dot_timeout: float) -> list[Row]:
    """Whole processes, from start to SVG file: the explorer's CLI and torchviz + dot."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        enc48 = work / "encoder48.py"
        enc48.write_text(get_lesson("transformer_encoder").code.replace("=24", "=48"))
        lstm = work / "lstm50.py"
        lstm.write_text(LSTM_PROGRAM)
        viz = work / "torchviz_svg.py"
        viz.write_text(TORCHVIZ_SCRIPT)
        python = sys.executable

        def render(program: Path) -> float | None:
            out = work / "out.svg"
            command = [python, "-m", "app.cli", "render", str(program), "--format", "svg"]
            return process_seconds([*command, "-o", str(out)], dot_timeout)

        ours = render(enc48)
        anchor = process_seconds([python, str(viz), str(enc48), str(work / "v.svg")], dot_timeout)
        rows.append(Row("CLI render to SVG, encoder-48", ours, "torchviz + dot", anchor, "≤ 0.5×"))
        ours = render(lstm)
        plain = process_seconds([python, str(lstm)], dot_timeout)
        rows.append(
            Row(
                "CLI render to SVG, LSTMCell × 50",
                ours,
                "plain run (flat dot: no finish in 900 s)",
                plain,
                "~3.3 s",
            )
        )
    return rows


def overhead_rows(repeat: int) -> list[Row]:
    rows = []
    for lesson in ("mlp_cross_entropy", "transformer_encoder"):
        code = get_lesson(lesson).code
        plain = best_of(repeat, lambda code=code: plain_run(code))
        ours = best_of(repeat, lambda code=code: trace_code(code))
        rows.append(Row(f"recording overhead, {lesson}", ours, "plain run", plain))
    return rows


def cuda_rows(repeat: int) -> list[Row]:
    if not torch.cuda.is_available():
        return [Row("trace on CUDA", None, "trace on CPU", None, "no GPU here")]
    code = get_lesson("transformer_encoder").code
    trace_code(code, device="cuda")  # CUDA start-up is not part of the figure
    # wall-clock here: the GPU works while this process waits
    cpu = best_of(repeat, lambda: trace_code(code, device="cpu"), time.perf_counter)
    gpu = best_of(repeat, lambda: trace_code(code, device="cuda"), time.perf_counter)
    return [Row("trace_code on CUDA, transformer_encoder", gpu, "on CPU", cpu)]


def load_rows() -> list[Row]:
    """The API load figures of benchmarks/load.py, when that script is present."""
    if importlib.util.find_spec("benchmarks.load") is None:
        return [Row("API load", None, "–", None, "benchmarks/load.py absent")]
    from benchmarks import load

    measure = getattr(load, "measure", None)
    if callable(measure):  # measure(seconds) -> {"traces_per_s", "p50_s", "p99_s"}
        figures = measure(10.0)
        note = f"{figures['traces_per_s']:.1f} traces/s, p99 {figures['p99_s']:.2f} s"
        return [Row("API load: median trace", figures["p50_s"], "–", None, note)]
    return [Row("API load", None, "–", None, "see: python -m benchmarks.load")]


def folding_rows(repeat: int) -> list[Row]:
    """Trace + layout of folded repeats and of their full expansion (benchmarks/folding.py)."""
    from benchmarks.folding import measure_all

    return [
        Row(
            f"trace + layout, {f.case}, {f.view}: {f.boxes:,} boxes",
            f.trace_s + f.layout_s,
            "–",
            None,
            f.note,
        )
        for f in measure_all(repeat)
    ]


def machine() -> str:
    from app.devices import list_devices

    devices = ", ".join(
        f"{d.id} {d.name or ''}".strip()
        + (f" {d.total_memory_bytes / 2**30:.0f} GiB" if d.total_memory_bytes else "")
        for d in list_devices()
    )
    return (
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {platform.node()}, "
        f"{os.cpu_count()} cores; {devices}; Python {platform.python_version()}, "
        f"torch {torch.__version__}, one torch thread"
    )


def print_table(rows: list[Row], markdown: bool) -> None:
    def seconds(value: float | None) -> str:
        return "–" if value is None else f"{value:.3f}"

    header = ("measure", "ours CPU s", "anchor", "anchor CPU s", "ratio", "aim")
    lines = [
        (r.measure, seconds(r.ours), r.anchor, seconds(r.anchor_s), r.ratio(), r.aim) for r in rows
    ]
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|---|---:|---|---:|---:|---|")
        for line in lines:
            print("| " + " | ".join(line) + " |")
        return
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    for line in (header, *lines):
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dot-timeout", type=float, default=300)
    parser.add_argument("--skip-cli", action="store_true", help="no whole-process renders")
    parser.add_argument("--markdown", action="store_true", help="the table as Markdown")
    parser.add_argument(
        "--recording-cost-only", action="store_true", help="only the six recording-cost workloads"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # for the whole-process rows
    print(machine())
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))  # make_dot recurses per node
    if args.recording_cost_only:
        print_table(recording_cost_rows(args.repeat), args.markdown)
        return
    rows = recording_rows(args.repeat)
    rows += recording_cost_rows(args.repeat)
    rows += view_rows(args.repeat, args.dot_timeout)
    if not args.skip_cli:
        rows += cli_rows(args.dot_timeout)
    rows += overhead_rows(args.repeat)
    rows += folding_rows(args.repeat)
    rows += cuda_rows(args.repeat)
    rows += load_rows()
    print_table(rows, args.markdown)


if __name__ == "__main__":
    main()
