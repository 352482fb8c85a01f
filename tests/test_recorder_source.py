"""Unnamed tensors labelled by the source expression that made them."""

from __future__ import annotations

import pytest
import torch

from app.recorder import (
    trace_callable,
)
from app.schemas import OpNode, TensorNode
from app.tracing import trace_code
from tests.conftest import tensor_named


def test_unnamed_constants_are_labelled_by_their_source_expression() -> None:
    code = (
        "import torch\n"
        "x = torch.tensor([1.0, 2.0], requires_grad=True)\n"
        "with torch.no_grad():\n"
        "    scale = x.sum() * 2\n"
        "y = (x * scale + torch.ones(2) * 0.5).sum() + torch.sin(x.detach()).sum()\n"
        "y.backward()\n"
    )
    graph = trace_code(code)
    constants = {n.label: n for n in graph.nodes if isinstance(n, TensorNode)}
    assert "leaf" not in constants
    assert constants["scale"].line == 4  # a named constant keeps its name
    for text in ("torch.ones(2) * 0.5", "torch.sin(x.detach()).sum()"):
        node = constants[text]
        assert node.line == 5 and not node.requires_grad
    # the gradient is still torch's: d/dx of x * scale with scale = 6
    assert graph.backward[0].grads[constants["x"].id].values == [6.0, 6.0]


def test_constants_made_in_the_programs_own_forward_are_labelled_too() -> None:
    code = (
        "import torch\nimport torch.nn as nn\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(2, 2)\n"
        "    def forward(self, x):\n"
        "        return self.fc(x) * torch.full((2,), 3.0)\n"
        "net = Net()\n"
        "loss = net(torch.ones(1, 2)).sum()\n"
        "loss.backward()\n"
    )
    graph = trace_code(code)
    labels = {n.label for n in graph.nodes if isinstance(n, TensorNode)}
    assert "torch.full((2,), 3.0)" in labels  # the program's own forward made it
    assert "torch.ones(1, 2)" in labels


def test_unnamed_results_are_labelled_by_their_expression_and_kept_apart() -> None:
    code = (
        "import torch\n"
        "x = torch.tensor(2.0, requires_grad=True)\n"
        "w = torch.tensor(3.0, requires_grad=True)\n"
        "y = x * w + x * w\n"
        "for i in range(2):\n"
        "    y = y + (w * 2)\n"
        "a, b = (x * torch.ones(4)).chunk(2)\n"
        "total = (a.sum() + b.sum() + y + torch.sin(x) * torch.cos(w) * torch.exp(x - w)\n"
        "         * torch.tanh(w))\n"
        "total.backward()\n"
    )
    graph = trace_code(code)
    unnamed = [n for n in graph.nodes if isinstance(n, TensorNode) and n.name is None]
    labels = [n.label for n in unnamed]
    assert len(labels) == len(set(labels)), labels  # no two boxes share a name
    assert labels[:2] == ["x * w", "x * w #2"]  # y = x * w + x * w
    assert {"w * 2", "w * 2 #2", "x * torch.ones(4)", "a.sum()", "b.sum()"} <= set(labels)
    chunks = [n for n in unnamed if n.expression and n.expression.startswith("(x * ")]
    assert [n.label for n in chunks] == []  # the chunk's outputs are a and b
    assert [n.expression for n in unnamed[:2]] == ["x * w", "x * w"]  # in full, both
    long = [n for n in unnamed if n.expression and len(n.expression) > 28]
    assert long, labels
    for node in long:  # a box label is short; the full text is kept for the inspector
        assert len(node.label) <= 28 + 3 and node.label.endswith(("…", "#2"))
        assert node.label.split("…")[0] == node.expression[: len(node.label.split("…")[0])]
    assert "\n" not in "".join(n.expression or "" for n in unnamed)
    # the gradient is still torch's own
    x = torch.tensor(2.0, requires_grad=True)
    w = torch.tensor(3.0, requires_grad=True)
    y = x * w + x * w + w * 2 + w * 2
    a, b = (x * torch.ones(4)).chunk(2)
    total = a.sum() + b.sum() + y + torch.sin(x) * torch.cos(w) * torch.exp(x - w) * torch.tanh(w)
    total.backward()
    grads = graph.backward[0].grads
    assert grads[tensor_named(graph, "x").id].values == pytest.approx(x.grad.item())
    assert grads[tensor_named(graph, "w").id].values == pytest.approx(w.grad.item())


def test_a_repeated_expression_in_a_loop_is_numbered_in_order() -> None:
    code = (
        "import torch\n"
        "w = torch.tensor(1.0, requires_grad=True)\n"
        "outs = []\n"
        "for i in range(3):\n"
        "    outs.append(w * 2)\n"
        "sum(outs).backward()\n"
    )
    graph = trace_code(code)
    labels = [n.label for n in graph.nodes if isinstance(n, TensorNode) and n.label.startswith("w")]
    assert labels == ["w", "w * 2", "w * 2 #2", "w * 2 #3"]


def test_results_without_readable_source_keep_distinct_op_labels() -> None:
    x = torch.tensor(2.0, requires_grad=True)
    w = torch.tensor(3.0, requires_grad=True)
    graph, _ = trace_callable(lambda: x * w + x * w, names={"x": x, "w": w})  # no program text
    labels = sorted(n.label for n in graph.nodes if isinstance(n, TensorNode))
    assert labels == ["add_out", "mul_out", "mul_out#2", "w", "x"]
    assert all(n.expression is None for n in graph.nodes if isinstance(n, TensorNode))
    accumulators = {n.label for n in graph.nodes if isinstance(n, OpNode) and n.variable}
    assert accumulators == {"AccumulateGrad(x)", "AccumulateGrad(w)"}
