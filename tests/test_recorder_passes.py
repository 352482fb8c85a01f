"""Backward passes: the engine's order, gradients each node saw, .grad before accumulation, failed passes."""

from __future__ import annotations

from app.lessons import get_lesson
from app.schemas import OpNode, TensorNode
from app.tracing import trace_code
from tests.conftest import node_by_id, tensor_named


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


def test_a_failed_backward_the_program_caught_is_not_the_error() -> None:
    graph = trace_code(
        "import torch\nx = torch.tensor([1., 2.], requires_grad=True)\ny = x * x\n"
        "try:\n    y.backward()\nexcept RuntimeError:\n    pass\nz = x[5]\n"
    )
    assert graph.error is not None and graph.error.type == "IndexError"
    assert graph.error.pass_index is None and graph.error.roots == []


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
