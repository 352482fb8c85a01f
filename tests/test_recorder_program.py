"""A whole program: its errors, the call that raised, notes, transforms and checks run unrecorded."""

from __future__ import annotations

import pytest
import torch

from app.lessons import get_lesson
from app.recorder import (
    TraceOptions,
)
from app.schemas import Graph, OpNode, TensorNode
from app.tracing import trace_code
from tests.conftest import node_by_id, tensor_named


def test_inplace_on_leaf_error_keeps_partial_graph() -> None:
    code = get_lesson("inplace_leaf_error").code
    graph = trace_code(code)
    assert graph.error.type == "RuntimeError"
    assert "in-place" in graph.error.message
    assert code.splitlines()[graph.error.line - 1].strip() == "w.add_(1)"
    assert tensor_named(graph, "y").grad_fn == "MulBackward0"


def test_user_exception_line_and_syntax_error() -> None:
    graph = trace_code(
        "import torch\nx = torch.ones(2, requires_grad=True)\ny = x * 2\nz = y @ torch.ones(3)\n"
    )
    assert graph.error.type == "RuntimeError" and graph.error.line == 4
    assert tensor_named(graph, "y").grad_fn == "MulBackward0"
    broken = trace_code("import torch\nx = (1,\n")
    assert broken.error.type == "SyntaxError" and broken.error.line == 2


def test_a_forward_error_names_no_backward_pass() -> None:
    graph = trace_code(get_lesson("inplace_leaf_error").code)
    assert graph.error is not None and graph.error.pass_index is None and graph.error.roots == []


def test_notes_carry_message_keys_for_the_page() -> None:
    graph = trace_code(get_lesson("implicit_backward").code)
    (message,) = graph.messages
    assert message.key == "implicitBackward" and message.params["name"]
    assert message.text in graph.notes


SHAPE_ERROR = """import torch
x = torch.randn(3, 4, requires_grad=True)
w = torch.randn(5, 2, requires_grad=True)
h = x * 2
y = h @ w
y.sum().backward()
"""


def test_the_call_that_raised_is_a_ghost_node_with_its_inputs() -> None:
    graph = trace_code(SHAPE_ERROR)
    assert graph.error is not None and graph.error.line == 5
    ghost = node_by_id(graph, graph.error.node)
    assert isinstance(ghost, OpNode) and ghost.failed and ghost.grad_fn is None
    assert ghost.label == "matmul" and ghost.line == 5
    sources = {e.source for e in graph.edges if e.target == ghost.id}
    assert sources == {tensor_named(graph, "h").id, tensor_named(graph, "w").id}
    assert graph.forward[-1].node == ghost.id and graph.forward[-1].outputs == []
    assert sum(1 for n in graph.nodes if isinstance(n, OpNode) and n.failed) == 1


def test_a_failure_inside_a_module_is_drawn_in_that_module() -> None:
    code = (
        "import torch\nimport torch.nn as nn\n"
        "model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(6, 2))\n"
        "out = model(torch.randn(3, 4))\n"
    )
    graph = trace_code(code)
    ghost = node_by_id(graph, graph.error.node)
    assert ghost.failed and ghost.op == "linear" and ghost.module == "2"
    inputs = {node_by_id(graph, e.source).label for e in graph.edges if e.target == ghost.id}
    assert inputs == {"relu_out", "model.2.weight", "model.2.bias"}


def test_an_error_the_program_caught_leaves_no_ghost() -> None:
    code = SHAPE_ERROR.replace(
        "y = h @ w\n", "try:\n    h @ w\nexcept RuntimeError:\n    pass\ny = (h * 3).sum()\n"
    )
    graph = trace_code(code)
    assert graph.error is None and graph.backward
    assert not any(isinstance(n, OpNode) and n.failed for n in graph.nodes)


def _leaf_grad(graph: Graph, name: str) -> list:
    (node,) = [n for n in graph.nodes if isinstance(n, TensorNode) and n.name == name][-1:]
    assert node.grad is not None and node.grad.values is not None
    return node.grad.values


def test_torch_func_transforms_run_unrecorded_with_a_note() -> None:
    code = (
        "import torch\nfrom torch.func import grad, vmap, jacrev\n"
        "x = torch.tensor([0.5, 1.0, 2.0], requires_grad=True)\n"
        "g = grad(lambda t: (t.sin() * t).sum())(x)\n"
        "J = jacrev(torch.sin)(x)\nv = vmap(lambda t: t * 2)(torch.ones(2, 3))\n"
        "loss = (g * x).sum() + J.sum() + v.sum()\nloss.backward()\n"
    )
    graph = trace_code(code)
    x = torch.tensor([0.5, 1.0, 2.0], requires_grad=True)
    g = torch.func.grad(lambda t: (t.sin() * t).sum())(x)
    loss = (g * x).sum() + torch.func.jacrev(torch.sin)(x).sum()
    loss.backward()
    assert graph.error is None
    assert "functionTransform" in [m.key for m in graph.messages]
    assert _leaf_grad(graph, "x") == pytest.approx(x.grad.tolist(), rel=1e-5)


def test_gradcheck_runs_unrecorded_and_the_program_goes_on() -> None:
    code = (
        "import torch\nfrom torch.autograd import gradcheck\n"
        "a = torch.randn(20, 10, dtype=torch.double, requires_grad=True)\n"
        "ok = gradcheck(lambda t: (t * t).sin(), (a,))\nloss = (a * a).sin().sum()\n"
        "loss.backward()\n"
    )
    graph = trace_code(code, options=TraceOptions(max_nodes=200))
    assert graph.error is None and len(graph.backward) == 1
    assert [m.key for m in graph.messages] == ["quietCheck"]
    assert len(graph.nodes) < 20
