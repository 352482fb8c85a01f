"""Write (or check) the recorded JSON of every gallery lesson, tutorial program and a few
trace_tensors / trace_callable graphs, so a change to the recorder can show it records the
same bytes: `python scripts/recording_snapshot.py DIR` writes, `--check DIR` compares."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.json_text import model_json_bytes  # noqa: E402
from app.lessons import all_lessons  # noqa: E402
from app.recorder import trace_callable, trace_tensors  # noqa: E402
from app.schemas import Graph  # noqa: E402
from app.tracing import trace_code  # noqa: E402

# what a program prints of an object's address changes from run to run
_ADDRESS = re.compile(rb" at 0x[0-9a-f]+")


def _mlp_loss() -> Graph:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    x, y = torch.randn(5, 4), torch.tensor([0, 2, 1, 1, 0])
    loss = nn.functional.cross_entropy(model(x), y)
    return trace_tensors(loss, names={"model": model, "x": x})


def _callable_encoder() -> Graph:
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    x = torch.randn(2, 3, 8)
    graph, _ = trace_callable(lambda m, v: m(v).pow(2).mean(), layer, x, names={"layer": layer})
    return graph


def recordings() -> Iterator[tuple[str, Callable[[], Graph]]]:
    """(file name, recording) of every program the snapshot holds."""
    for example in all_lessons():
        yield f"lesson-{example.id}", lambda code=example.code: trace_code(code)
    for path in sorted((ROOT / "tests" / "tutorials").glob("*.py")):
        yield f"tutorial-{path.stem}", lambda code=path.read_text(): trace_code(code)
    yield "tensors-mlp", _mlp_loss
    yield "callable-encoder", _callable_encoder


def main() -> int:
    """Write the snapshot, or compare against one; 1 when a recording differs."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    differ = []
    for name, record in recordings():
        payload = _ADDRESS.sub(b" at 0x?", model_json_bytes(record()))
        path = args.folder / f"{name}.json"
        if not args.check:
            path.write_bytes(payload)
        elif not path.is_file() or path.read_bytes() != payload:
            differ.append(name)
    if args.check:
        print("same bytes" if not differ else f"differ: {', '.join(differ)}")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
