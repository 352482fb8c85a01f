"""Names of tensors and parameters from the program's variables."""

from __future__ import annotations

import pytest
import torch

from app.schemas import Graph, TensorNode
from app.tracing import trace_code


def test_parameters_keep_their_module_path_through_loop_variables() -> None:
    code = (
        "import torch\nimport torch.nn as nn\n"
        "model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))\n"
        "for param in model.parameters():\n    param.requires_grad_(True)\n"
        "params = list(model.parameters())\nfirst = params[0]\n"
        "for name, layer in model.named_modules():\n    pass\n"
        "loss = model(torch.randn(2, 3)).sum()\nloss.backward()\n"
    )
    graph = trace_code(code)
    labels = {n.label for n in graph.nodes if n.kind == "tensor" and n.is_parameter}
    assert labels == {"model.0.weight", "model.0.bias", "model.2.weight", "model.2.bias"}
    modules = {n.module for n in graph.nodes if n.kind == "op" and n.module}
    assert modules == {"0", "1", "2"}


def _leaf_grad(graph: Graph, name: str) -> list:
    (node,) = [n for n in graph.nodes if isinstance(n, TensorNode) and n.name == name][-1:]
    assert node.grad is not None and node.grad.values is not None
    return node.grad.values


def test_unbind_views_made_stale_by_an_optimizer_step() -> None:
    code = (
        "import torch\nparams = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)\n"
        "opt = torch.optim.SGD([params], lr=0.1)\nfor step in range(3):\n"
        "    a, b, c = params\n    loss = (a * 2 + b * b - c) ** 2\n"
        "    opt.zero_grad()\n    loss.backward()\n    opt.step()\n"
    )
    graph = trace_code(code)
    params = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    opt = torch.optim.SGD([params], lr=0.1)
    for _ in range(3):
        a, b, c = params
        loss = (a * 2 + b * b - c) ** 2
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert graph.error is None and len(graph.backward) == 3
    assert _leaf_grad(graph, "params") == pytest.approx(params.grad.tolist())
