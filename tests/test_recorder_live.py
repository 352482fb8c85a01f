"""trace_tensors and trace_callable: live tensors recorded without touching .grad."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from app.lessons import get_lesson
from app.recorder import (
    trace_tensors,
)
from app.schemas import OpNode
from app.tracing import trace_code
from tests.conftest import tensor_named


def test_trace_tensors_leaves_grad_untouched_and_can_repeat() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    x = torch.randn(5, 3)
    loss = model(x).pow(2).mean()
    first = trace_tensors(loss, names={"model": model, "loss": loss})
    second = trace_tensors(loss, names={"model": model})
    assert all(p.grad is None for p in model.parameters())
    assert len(first.nodes) == len(second.nodes)
    loss.backward()
    weight = tensor_named(first, "model.0.weight")
    got = torch.tensor(first.backward[0].results[weight.id].values)
    assert torch.allclose(got, model[0].weight.grad, atol=1e-6)
    assert tensor_named(first, "loss").grad_fn == "MeanBackward0"
    order = [s.node for s in first.backward[0].steps]
    assert len(order) == len(set(order)) > 3


def test_trace_tensors_on_a_deep_chain() -> None:
    x = torch.ones(1, requires_grad=True)
    y = x
    for _ in range(2000):
        y = y * 1.0001
    graph = trace_tensors(y.sum())
    assert len([n for n in graph.nodes if isinstance(n, OpNode)]) == 2002
    assert x.grad is None


@pytest.mark.cuda
def test_cuda_trace_records_device_and_grads() -> None:
    graph = trace_code(get_lesson("shared_weight").code, device="cuda")
    assert graph.device.startswith("cuda")
    w = tensor_named(graph, "w")
    assert w.device.startswith("cuda") and graph.backward[0].grads[w.id].values == [5.0]


@pytest.mark.cuda
def test_cuda_mixed_graph_order_is_recorded_as_it_happened() -> None:
    code = (
        "import torch\nw = torch.ones(3, requires_grad=True, device='cpu')\n"
        "v = torch.ones(3, requires_grad=True, device='cuda')\n"
        "y = (w.cuda() * v).sum() + (w * 2).sum().cuda()\n"
    )
    graph = trace_code(code, device="cuda")
    (record,) = graph.backward
    assert record.added and len(record.steps) >= 6
    assert record.grads[tensor_named(graph, "w").id].values == [3.0, 3.0, 3.0]


DEEP_CHAIN_CHILD = """
import torch
from app.recorder import TraceOptions, trace_tensors
from app.tracing import trace_code

ops = 50_000
options = TraceOptions(max_nodes=4 * ops)
code = (
    "import torch\\nx = torch.ones(1, requires_grad=True)\\ny = x\\n"
    f"for i in range({ops}):\\n    y = y * 1.0001\\ny.backward()\\n"
)
graph = trace_code(code, options=options, wall_seconds=3600)
assert graph.error is None and len(graph.backward[0].steps) == ops + 1, graph.error
y = torch.ones(1, requires_grad=True)
for _ in range(ops):
    y = y * 1.0001
live = trace_tensors(y, backward=False, options=options)
assert len(live.nodes) == ops + 3  # the ops, the leaf, its AccumulateGrad, y
del y  # the program lets go of its chain after the recording: torch frees it
print("done")
"""


@pytest.mark.slow
def test_a_50000_op_chain_is_recorded_and_freed_without_a_crash() -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-c", DEEP_CHAIN_CHILD],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=1800,
        env={**__import__("os").environ, "PYTHONPATH": str(root)},
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])  # -11 was SIGSEGV
    assert proc.stdout.strip() == "done"


@pytest.mark.parametrize("values", [True, False])
def test_a_recording_holds_no_reference_cycle(values: bool) -> None:
    """Reference counting frees what a recording made once its caller lets go: no later
    garbage collection has to find it (a recording with values keeps its graph in the
    index of the chain rules, but not the recorder that made it)."""
    import gc
    import weakref

    from app.recorder import trace_callable
    from app.recorder.recorder import Recorder

    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    x = torch.randn(2, 3)
    loss = model(x).pow(2).mean()
    gc.collect()
    gc.disable()
    try:
        graph = trace_tensors(loss, names={"model": model}, values=values)
        called, _ = trace_callable(lambda: model(x).sum(), values=values)
        passes = (len(graph.backward), len(called.backward))
        alive = [weakref.ref(graph), weakref.ref(called)]
        del graph, called
        recorders = sum(type(o) is Recorder for o in gc.get_objects())
        freed = [ref() is None for ref in alive]
    finally:
        gc.enable()
    assert passes == (1, 1)  # the recordings are whole
    assert recorders == 0
    if not values:
        assert freed == [True, True]
