"""The tracer: seed facts, engine order, names, modules, saved tensors, failures, bounds."""

from __future__ import annotations

import gc
import threading

import pytest
import torch
from torch import nn

from app.graph_tracer import (
    PausedCollections,
    TraceOptions,
    trace_callable,
    trace_tensors,
    writes_in_place,
)
from app.lessons import get_lesson
from app.schemas import Graph, OpNode, TensorNode
from app.tracing import trace_code
from tests.conftest import node_by_id, tensor_named


def grad_of(graph: Graph, name: str, pass_index: int = -1) -> list | float:
    node = tensor_named(graph, name)
    return graph.backward[pass_index].grads[node.id].values


def test_seed_001_leaf_grads_and_x_without_grad() -> None:
    graph = trace_code(get_lesson("linear_expression").code)
    assert grad_of(graph, "w") == 3.0
    assert grad_of(graph, "b") == 1.0
    x = tensor_named(graph, "x")
    assert not x.requires_grad and x.is_leaf and x.grad is None
    assert x.id not in graph.backward[0].grads
    assert tensor_named(graph, "w").grad.values == 3.0
    assert "dy/dx: None" in graph.stdout


def test_seed_002_shared_leaf_sums_two_contributions() -> None:
    graph = trace_code(get_lesson("shared_weight").code)
    (record,) = graph.backward
    w = tensor_named(graph, "w")
    assert record.grads[w.id].values == [5.0]
    acc = next(n for n in graph.nodes if isinstance(n, OpNode) and n.variable == w.id)
    step = next(s for s in record.steps if s.node == acc.id)
    assert step.grad_inputs == [] and step.grad_outputs[0].values == [5.0]
    # the two ops that use w each sent w a gradient: 2 (from a = w + x) and 3 (from b = w + 1)
    consumers = [e.target for e in graph.edges if e.source == w.id]
    sent = sorted(s.grad_inputs[0].values[0] for s in record.steps if s.node in consumers)
    assert sent == [2.0, 3.0]


def test_grad_fn_names_and_is_leaf() -> None:
    graph = trace_code(get_lesson("shared_weight").code)
    assert tensor_named(graph, "a").grad_fn == "AddBackward0"
    assert tensor_named(graph, "y").grad_fn == "MulBackward0"
    assert tensor_named(graph, "w").is_leaf and not tensor_named(graph, "y").is_leaf
    ops = {n.grad_fn for n in graph.nodes if isinstance(n, OpNode)}
    assert {"AddBackward0", "MulBackward0", "AccumulateGrad"} <= ops


def test_retain_grad_and_gradient_through_non_leaf() -> None:
    graph = trace_code(get_lesson("retain_grad").code)
    a, b = tensor_named(graph, "a"), tensor_named(graph, "b")
    assert a.retains_grad and a.grad.values == [2.0]
    assert not b.retains_grad and b.grad is None
    flowed = graph.backward[0].tensor_grads
    assert flowed[a.id].values == [2.0] and flowed[b.id].values == [3.0]
    assert any("not a leaf" in note for note in graph.notes)


def test_second_derivative_six_then_two() -> None:
    graph = trace_code(get_lesson("second_derivative").code)
    first, second = graph.backward
    assert first.kind == second.kind == "grad" and first.create_graph
    assert list(first.results.values())[0].values == [6.0]
    assert list(second.results.values())[0].values == [2.0]
    grad_graph = [n for n in graph.nodes if isinstance(n, OpNode) and n.created_by_pass == 0]
    assert grad_graph, "the first gradient's own graph was not recorded"
    assert {s.node for s in second.steps} <= {n.id for n in grad_graph} | {
        n.id for n in graph.nodes if isinstance(n, OpNode)
    }
    assert second.root == [tensor_named(graph, "grad_1[0]").id]


def test_accumulation_over_four_passes() -> None:
    graph = trace_code(get_lesson("grad_accumulation").code)
    w = tensor_named(graph, "w")
    assert [p.grads[w.id].values for p in graph.backward] == [[5.0], [10.0], [15.0], [20.0]]
    assert w.grad.values == [0.0]  # zero_() after the loop
    iterations = {step.after_pass for step in graph.forward}
    assert iterations == {0, 1, 2, 3}
    # every iteration has its own ops but all share the one leaf w
    assert len([n for n in graph.nodes if isinstance(n, TensorNode) and n.name == "w"]) == 1
    assert (
        len([n for n in graph.nodes if isinstance(n, OpNode) and n.grad_fn == "MulBackward0"]) == 4
    )


def test_inplace_on_leaf_error_keeps_partial_graph() -> None:
    code = get_lesson("inplace_leaf_error").code
    graph = trace_code(code)
    assert graph.error.type == "RuntimeError"
    assert "in-place" in graph.error.message
    assert code.splitlines()[graph.error.line - 1].strip() == "w.add_(1)"
    assert tensor_named(graph, "y").grad_fn == "MulBackward0"


CROSSED = """import torch
a = torch.tensor(2., requires_grad=True)
b = torch.tensor(3., requires_grad=True)
p = a * b
q = a.exp()
r = b.sin()
s = (p + q) * r
t = q * p
y = s + t
"""


def test_backward_order_is_the_engines() -> None:
    graph = trace_code(CROSSED)
    (record,) = graph.backward
    recorded = [node_by_id(graph, s.node).grad_fn for s in record.steps]
    # run the same program in plain torch and note the order in which the engine starts nodes
    ns: dict = {}
    exec(CROSSED, ns)
    order: list[str] = []
    seen, stack, handles = set(), [ns["y"].grad_fn], []
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        handles.append(fn.register_prehook(lambda g, fn=fn: order.append(fn.name())))
        stack.extend(f for f, _ in fn.next_functions)
    ns["y"].backward()
    expected = [n.replace("torch::autograd::", "") for n in order]
    assert recorded == expected
    # the order is not the creation order reversed, so a topological guess would differ
    sequence = [node_by_id(graph, s.node).sequence_nr for s in record.steps]
    non_acc = [s for s in sequence if s is not None]
    assert non_acc == sorted(non_acc, reverse=True)


def test_modules_group_ops_and_name_parameters() -> None:
    graph = trace_code(get_lesson("mlp_cross_entropy").code)
    modules = {n.module for n in graph.nodes if isinstance(n, OpNode) and n.module}
    assert {"fc1", "fc2"} <= modules
    params = {n.name for n in graph.nodes if isinstance(n, TensorNode) and n.is_parameter}
    assert {"net.fc1.weight", "net.fc1.bias", "net.fc2.weight", "net.fc2.bias"} <= params
    ce = [s for s in graph.forward if s.call == "cross_entropy"]
    assert ce and len(ce[0].nodes) >= 2
    kinds = {node_by_id(graph, n).grad_fn for n in ce[0].nodes}
    assert {"NllLossBackward0", "LogSoftmaxBackward0"} <= kinds
    linear = next(s for s in graph.forward if s.call == "linear" and s.module == "fc1")
    assert len(linear.nodes) == 2  # AddmmBackward0 + TBackward0 under one call


def test_custom_function_appears_under_its_name() -> None:
    code = get_lesson("custom_function").code
    graph = trace_code(code)
    apply_line = next(i for i, t in enumerate(code.splitlines(), 1) if "MyReLU.apply" in t)
    custom = [n for n in graph.nodes if isinstance(n, OpNode) and n.grad_fn == "MyReLUBackward"]
    assert len(custom) == 1
    step = next(s for s in graph.forward if s.node == custom[0].id)
    assert step.line == apply_line and step.outputs == [tensor_named(graph, "h_relu").id]
    assert custom[0].id in [s.node for s in graph.backward[0].steps]


def test_weight_sharing_in_dynamic_graph() -> None:
    graph = trace_code(get_lesson("dynamic_net").code)
    weight = tensor_named(graph, "model.middle_linear.weight")
    acc = next(n for n in graph.nodes if isinstance(n, OpNode) and n.variable == weight.id)
    consumers_by_pass = [e for e in graph.edges if e.source == weight.id]
    assert len(consumers_by_pass) == 1 + 3  # depth 1 then depth 3, one T node per use
    assert acc.id in [s.node for s in graph.backward[1].steps]


def test_saved_tensors_are_linked_to_tensor_nodes() -> None:
    graph = trace_code(get_lesson("shared_weight").code)
    mul = next(n for n in graph.nodes if isinstance(n, OpNode) and n.grad_fn == "MulBackward0")
    saved = {s.name: s.tensor for s in mul.saved}
    assert saved == {"other": tensor_named(graph, "b").id, "self": tensor_named(graph, "a").id}


def test_training_loop_keeps_series_after_recorded_passes() -> None:
    graph = trace_code(get_lesson("linear_regression").code, options=TraceOptions(max_passes=3))
    assert len(graph.backward) == 3
    assert graph.truncated.passes_recorded == 3
    assert graph.truncated.passes_total > 3
    loss = next(s for s in graph.series if s.kind == "loss")
    assert len(loss.values) == graph.truncated.passes_total
    assert loss.values[-1] < loss.values[0]
    assert {"w", "b"} <= {s.name for s in graph.series}


def test_forward_steps_carry_lines_values_and_order() -> None:
    code = get_lesson("linear_expression").code
    graph = trace_code(code)
    assert [s.call for s in graph.forward] == ["mul", "add"]
    lines = code.splitlines()
    assert all(lines[s.line - 1].startswith("y = x * w + b") for s in graph.forward)
    y = tensor_named(graph, "y")
    assert y.value.values == 17.0 and y.line == graph.forward[-1].line
    assert graph.forward[-1].outputs == [y.id]


def test_every_edge_and_step_refers_to_known_nodes() -> None:
    graph = trace_code(get_lesson("logistic_regression").code)
    ids = {n.id for n in graph.nodes}
    assert all(e.source in ids and e.target in ids for e in graph.edges)
    for step in graph.forward:
        assert {step.node, *step.nodes, *step.inputs, *step.outputs} <= ids
    for record in graph.backward:
        assert {s.node for s in record.steps} <= ids
        assert set(record.grads) <= ids


def test_user_exception_line_and_syntax_error() -> None:
    graph = trace_code(
        "import torch\nx = torch.ones(2, requires_grad=True)\ny = x * 2\nz = y @ torch.ones(3)\n"
    )
    assert graph.error.type == "RuntimeError" and graph.error.line == 4
    assert tensor_named(graph, "y").grad_fn == "MulBackward0"
    broken = trace_code("import torch\nx = (1,\n")
    assert broken.error.type == "SyntaxError" and broken.error.line == 2


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


def test_inline_limit_keeps_large_values_out() -> None:
    graph = trace_code(
        "import torch\nw = torch.randn(30, 40, requires_grad=True)\nloss = (w * w).sum()\n",
        options=TraceOptions(inline_limit=16),
    )
    w = tensor_named(graph, "w")
    assert w.value.values is None and w.value.stats is not None
    assert w.value.heatmap and len(w.value.heatmap) <= 16 and w.value.histogram.counts
    assert sum(w.value.histogram.counts) == 1200


def test_long_chain_needs_no_recursion() -> None:
    code = "import torch\nx = torch.ones(1, requires_grad=True)\ny = x\nfor i in range(3000):\n    y = y * 1.0001\n"
    graph = trace_code(code)
    assert len(graph.backward) == 1 and graph.backward[0].added
    assert len(graph.backward[0].steps) == 3001


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


def test_a_second_backward_that_raises_is_an_error_not_a_truncation() -> None:
    graph = trace_code(
        "import torch\nx = torch.tensor([1., 2.], requires_grad=True)\ny = (x * x).sum()\n"
        "y.backward()\ny.backward()\n"
    )
    assert len(graph.backward) == 1 and graph.truncated is None
    assert graph.error is not None and graph.error.line == 5
    assert [(m.key, m.params) for m in graph.messages] == [("failedPass", {"n": 2})]
    # the error names the pass that raised and the tensor backward() was called on
    assert graph.error.pass_index == 1 and graph.error.roots == [tensor_named(graph, "y").id]
    assert graph.error.node is None


def test_a_forward_error_names_no_backward_pass() -> None:
    graph = trace_code(get_lesson("inplace_leaf_error").code)
    assert graph.error is not None and graph.error.pass_index is None and graph.error.roots == []


def test_a_failed_backward_the_program_caught_is_not_the_error() -> None:
    graph = trace_code(
        "import torch\nx = torch.tensor([1., 2.], requires_grad=True)\ny = x * x\n"
        "try:\n    y.backward()\nexcept RuntimeError:\n    pass\nz = x[5]\n"
    )
    assert graph.error is not None and graph.error.type == "IndexError"
    assert graph.error.pass_index is None and graph.error.roots == []


def test_notes_carry_message_keys_for_the_page() -> None:
    graph = trace_code(get_lesson("implicit_backward").code)
    (message,) = graph.messages
    assert message.key == "implicitBackward" and message.params["name"]
    assert message.text in graph.notes


def test_module_classes_are_recorded_by_path() -> None:
    graph = trace_code(get_lesson("mlp_cross_entropy").code)
    assert graph.modules["fc1"].startswith("Linear(")
    assert "→" in graph.modules["fc1"]


def test_values_are_recorded_as_they_were_before_an_in_place_change() -> None:
    # statistics are computed in batches later: an in-place write must not leak into them
    code = (
        "import torch\nw = torch.ones(100, requires_grad=True)\ny = w * 2\n"
        "with torch.no_grad():\n    w.add_(1)\nloss = y.sum()\nloss.backward()\n"
        "with torch.no_grad():\n    w.grad.mul_(10)\n"
    )
    graph = trace_code(code)
    w = tensor_named(graph, "w")
    assert (w.value.stats.mean, w.value.stats.max) == (1.0, 1.0)
    assert graph.backward[0].grads[w.id].stats.mean == 2.0
    assert w.grad.stats.mean == 20.0  # .grad as it is at the end


def test_every_recorded_tensor_has_statistics() -> None:
    graph = trace_code(get_lesson("transformer_encoder").code)
    datas = [n.value for n in graph.nodes if isinstance(n, TensorNode)]
    datas += [g for p in graph.backward for s in p.steps for g in s.grad_outputs if g]
    datas += [s.value for n in graph.nodes if isinstance(n, OpNode) for s in n.saved if s.value]
    assert len(datas) > 1000
    assert all(d.stats is not None for d in datas if d.shape and 0 not in d.shape)
    big = [d for d in datas if d.values is None and d.heatmap is not None]
    assert big and all(sum(d.histogram.counts) == _numel(d.shape) for d in big)


@pytest.mark.parametrize(
    ("func", "kwargs", "writes"),
    [
        (torch.Tensor.add_, {}, True),
        (torch.Tensor.__iadd__, {}, True),
        (torch.Tensor.__setitem__, {}, True),
        (torch._foreach_add_, {}, True),
        (torch.add, {"out": torch.zeros(1)}, True),
        (torch.Tensor.add, {}, False),
        (torch.Tensor.__add__, {}, False),
        (torch.add, {"out": None}, False),
    ],
)
def test_writes_in_place(func: object, kwargs: dict, writes: bool) -> None:
    assert writes_in_place(func, kwargs) is writes


def _numel(shape: list[int]) -> int:
    count = 1
    for size in shape:
        count *= size
    return count


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


def test_grad_before_accumulation_keeps_its_value_for_large_leaves() -> None:
    # AccumulateGrad adds into .grad in place while that step's statistics wait for a flush
    code = (
        "import torch\nw = torch.ones(100, requires_grad=True)\n"
        "for _ in range(2):\n    (w * 2).sum().backward()\n"
    )
    graph = trace_code(code)
    w = tensor_named(graph, "w")
    second = graph.backward[1]
    (step,) = [s for s in second.steps if node_by_id(graph, s.node).variable == w.id]
    assert step.grad_before.stats.mean == 2.0 and step.grad_before.values is None
    assert second.grads[w.id].stats.mean == 4.0


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


def test_each_call_of_a_reused_module_gets_its_own_box() -> None:
    graph = trace_code(get_lesson("dynamic_net").code)
    second = [n for n in graph.nodes if isinstance(n, OpNode) and n.call is not None]
    paths = {n.module for n in second if n.module}
    assert {"middle_linear", "middle_linear#2", "middle_linear#3"} <= paths
    assert graph.modules["middle_linear#3"] == graph.modules["middle_linear"]
    # the shared weight is one tensor node that feeds every call
    weight = tensor_named(graph, "model.middle_linear.weight")
    users = {node_by_id(graph, e.target).module for e in graph.edges if e.source == weight.id}
    assert {"middle_linear", "middle_linear#2", "middle_linear#3"} <= users


def test_sub_modules_of_a_repeated_call_live_in_that_call() -> None:
    code = (
        "import torch\nimport torch.nn as nn\n"
        "class Block(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(3, 3)\n"
        "    def forward(self, x):\n"
        "        return torch.tanh(self.fc(x))\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.block = Block()\n"
        "    def forward(self, x):\n"
        "        return self.block(self.block(x))\n"
        "net = Net()\n"
        "for step in range(2):\n"
        "    net(torch.ones(1, 3)).sum().backward()\n"
    )
    graph = trace_code(code)
    paths = {n.module for n in graph.nodes if isinstance(n, OpNode) and n.module}
    assert paths == {"block", "block.fc", "block#2", "block#2.fc"}  # counted per outer call


def _small_loss() -> torch.Tensor:
    w = torch.randn(4, 3, requires_grad=True)
    return (torch.randn(2, 4) @ w).relu().sum()


def test_collections_are_paused_while_recording_and_restored_after() -> None:
    seen: list[bool] = []
    loss = _small_loss()
    handle = loss.grad_fn.register_prehook(lambda grads: seen.append(gc.isenabled()))
    assert gc.isenabled()
    trace_tensors(loss)
    handle.remove()
    assert seen == [False] and gc.isenabled()
    gc.disable()
    try:
        trace_tensors(_small_loss())
        assert not gc.isenabled()  # left as it was found
    finally:
        gc.enable()


def test_paused_collections_nest_across_threads_and_errors() -> None:
    entered, leave = threading.Event(), threading.Event()

    def hold() -> None:
        with PausedCollections():
            entered.set()
            leave.wait(10)

    other = threading.Thread(target=hold)
    other.start()
    entered.wait(10)
    with pytest.raises(ZeroDivisionError), PausedCollections():
        1 / 0  # noqa: B018
    assert not gc.isenabled()  # the other thread still holds its pause
    leave.set()
    other.join(10)
    assert gc.isenabled()


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


def test_module_boxes_carry_the_path_of_the_variable_holding_the_model() -> None:
    code = (
        "import torch\nfrom torch import nn\n"
        "class Block(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(2, 2)\n"
        "    def forward(self, x):\n"
        "        return self.fc(x).relu()\n"
        "model = nn.Sequential(Block(), nn.Linear(2, 1))\n"
        "model(torch.ones(1, 2)).sum().backward()\n"
    )
    graph = trace_code(code)
    assert graph.module_paths == {"0": "model.0", "0.fc": "model.0.fc", "1": "model.1"}
    params = {n.name for n in graph.nodes if isinstance(n, TensorNode) and n.is_parameter}
    for path in graph.module_paths.values():  # a box's path is its parameters' prefix
        assert any(p.startswith(path + ".") for p in params), path


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


def test_complex_sparse_and_nested_tensors_are_recorded() -> None:
    code = (
        "import torch\nz = torch.tensor([1 + 2j, 3 - 1j], requires_grad=True)\n"
        "y = (z * z.conj()).real.sum()\ny.backward()\n"
        "s = torch.eye(3).to_sparse().requires_grad_(True)\n"
        "w = torch.ones(3, 2, requires_grad=True)\nout = torch.sparse.mm(s, w).sum()\n"
        "out.backward()\n"
        "nt = torch.nested.nested_tensor([torch.ones(2, 3), torch.ones(4, 3)])\n"
        "doubled = nt * 2\n"
    )
    graph = trace_code(code)
    assert graph.error is None and not graph.notes[1:]  # at most torch's own nested warning
    assert _leaf_grad(graph, "z") == pytest.approx([abs(2 * (1 + 2j)), abs(2 * (3 - 1j))])
    assert _leaf_grad(graph, "w") == [[1.0, 1.0]] * 3
    (s,) = [n for n in graph.nodes if isinstance(n, TensorNode) and n.name == "s"]
    assert s.shape == [3, 3] and s.value.values == torch.eye(3).tolist()


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


DEEP_CHAIN_CHILD = """
import torch
from app.graph_tracer import TraceOptions, trace_tensors
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
    from app.graph_tracer import most_passes

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
