"""Long loops and the node limit: passes run unrecorded, then the recording resumes."""

from __future__ import annotations

import pytest
import torch

from app.recorder import (
    TraceOptions,
)
from app.schemas import Graph, TensorNode
from app.tracing import trace_code
from tests.conftest import tensor_named


def test_node_cap_ends_with_the_partial_graph_and_a_note() -> None:
    code = (
        "import torch\nx = torch.ones(1, requires_grad=True)\ny = x\nfor i in range(100):\n"
        "    y = y * 1.5\nprint(float(y))\n"
    )
    graph = trace_code(code, options=TraceOptions(max_nodes=50))
    assert graph.error is None and len(graph.nodes) == 50
    y = torch.ones(1)
    for _ in range(100):
        y = y * 1.5
    assert graph.stdout.strip() == str(float(y))  # the program ran on, unrecorded
    (note,) = [m for m in graph.messages if m.key == "nodeLimit"]
    assert note.params == {"limit": 50, "line": 5}
    ids = {n.id for n in graph.nodes}
    assert all(e.source in ids and e.target in ids for e in graph.edges)


def test_a_long_loop_runs_unrecorded_after_its_passes_and_keeps_its_plot() -> None:
    backward = torch.Tensor.backward
    code = (
        "import torch\nw = torch.tensor([3.0], requires_grad=True)\n"
        "opt = torch.optim.SGD([w], lr=0.1)\n"
        "for step in range(40):\n    opt.zero_grad()\n    loss = ((w - 1.0) ** 2).sum()\n"
        "    loss.backward()\n    opt.step()\n"
        "seen = torch._C._len_torch_function_stack()\n"
    )
    graph = trace_code(code, options=TraceOptions(max_passes=3))
    assert graph.error is None and graph.truncated is not None
    assert graph.truncated.passes_total == 40 and len(graph.backward) == 4  # 3 and the last
    assert [m.key for m in graph.messages] == ["passesSummarisedLastFull"]
    assert graph.messages[0].params == {"first": 4, "last": 39, "line": 7}
    (loss,) = [s for s in graph.series if s.kind == "loss"]
    expected, w = [], 3.0
    for _ in range(40):  # plain gradient descent on (w - 1)^2
        expected.append((w - 1.0) ** 2)
        w -= 0.1 * 2 * (w - 1.0)
    assert loss.values == pytest.approx(expected, rel=1e-4, abs=1e-6)  # float32
    # the recorder left torch as it found it
    assert torch.Tensor.backward is backward and torch._C._len_torch_function_stack() == 0


def _leaf_grad(graph: Graph, name: str) -> list:
    (node,) = [n for n in graph.nodes if isinstance(n, TensorNode) and n.name == name][-1:]
    assert node.grad is not None and node.grad.values is not None
    return node.grad.values


def test_a_long_loop_is_summarised_and_what_follows_it_recorded() -> None:
    code = (
        "import torch\nw = torch.tensor([1.0, -2.0], requires_grad=True)\ni = 0\n"
        "while i < 30:\n    loss = (w ** 2).sum()\n    loss.backward()\n"
        "    with torch.no_grad():\n        w -= 0.1 * w.grad\n    w.grad = None; i += 1\n"
        "v = torch.tensor([3.0], requires_grad=True)\nh = v * 2\n"
        "h.register_hook(lambda g: g * 10)\nout = h.sum()\nout.backward()\n"
    )
    graph = trace_code(code, options=TraceOptions(max_passes=4))
    assert graph.error is None
    assert len(graph.backward) == 5 and graph.backward[-1].line == 14
    (note,) = [m for m in graph.messages if m.key == "passesSummarised"]
    assert note.params == {"first": 5, "last": 30, "line": 6}
    last_loss = [n for n in graph.nodes if isinstance(n, TensorNode) and n.name == "loss"][-1]
    assert last_loss.value.values == pytest.approx(0.8**58 * 5, rel=1e-3)  # the 30th loss
    assert len(next(s for s in graph.series if s.name == "loss").values) == 31
    assert _leaf_grad(graph, "v") == [20.0]


def test_a_leaf_rebound_while_paused_shows_its_final_grad() -> None:
    code = (
        "import torch\nw = torch.tensor([1.0, -2.0], requires_grad=True)\n"
        "for i in range(12):\n    loss = (w ** 2).sum()\n    loss.backward()\n"
        "    w = (w - 0.1 * w.grad).detach().requires_grad_()\n"
        "    (w ** 3).sum().backward()\n"
    )
    graph = trace_code(code, options=TraceOptions(max_passes=3))
    w = torch.tensor([1.0, -2.0], requires_grad=True)
    for _ in range(12):
        (w**2).sum().backward()
        w = (w - 0.1 * w.grad).detach().requires_grad_()
        (w**3).sum().backward()
    assert _leaf_grad(graph, "w") == pytest.approx(w.grad.tolist())


def test_the_last_iteration_of_a_range_loop_is_recorded_in_full() -> None:
    code = (
        "import torch\nw = torch.tensor([1.0, -2.0], requires_grad=True)\nsteps = 12\n"
        "for epoch in range(steps - 2):\n    loss = (w * epoch).sum()\n    loss.backward()\n"
        "print(w.grad)\n"
    )
    graph = trace_code(code, options=TraceOptions(max_passes=3))
    assert graph.error is None and len(graph.backward) == 4
    (note,) = graph.messages
    assert note.key == "passesSummarisedLastFull"
    assert note.params == {"first": 4, "last": 9, "line": 6}
    last = graph.backward[-1]
    (w,) = [n for n in graph.nodes if isinstance(n, TensorNode) and n.name == "w"]
    assert last.grads[w.id].values == [45.0, 45.0]  # 0 + 1 + ... + 9, after the 10th pass
    (mul,) = [s for s in last.steps if s.rule is not None and s.rule.grad_fn == "MulBackward0"]
    assert mul.grad_inputs[0].values == [9.0, 9.0]  # the gradient of the last pass alone


def test_a_last_iteration_without_assignments_is_recorded_in_full_too() -> None:
    code = (
        "import torch\nw = torch.tensor([2.0], requires_grad=True)\n"
        "for epoch in range(6):\n    (w * w * epoch).sum().backward()\n"
    )
    graph = trace_code(code, options=TraceOptions(max_passes=2))
    assert len(graph.backward) == 3 and graph.messages[0].key == "passesSummarisedLastFull"
    (w,) = [n for n in graph.nodes if isinstance(n, TensorNode) and n.name == "w"]
    assert graph.backward[-1].grads[w.id].values == [60.0]  # 4 * (0 + 1 + ... + 5)
    assert len(graph.backward[-1].steps) == 4  # sum, two muls, AccumulateGrad


def test_many_loops_keep_at_most_most_passes_and_the_server_reads_them() -> None:
    from app.graph_jobs import GraphBounds, read_graph
    from app.recorder import most_passes

    loops = "".join(
        f"for i in range(10):\n    (w * {k + 1}).sum().backward()\nv{k} = w * 2\n"
        for k in range(12)
    )
    code = "import torch\nw = torch.tensor([1.0], requires_grad=True)\n" + loops
    graph = trace_code(code, options=TraceOptions(max_passes=2))
    assert graph.error is None
    assert 2 < len(graph.backward) <= most_passes(2)
    assert (w := tensor_named(graph, "w")).grad is not None
    assert w.grad.values == [sum(10 * (k + 1) for k in range(12))]  # torch's final .grad
    read_graph(graph.model_dump_json().encode(), GraphBounds(20_000, most_passes(2)))
