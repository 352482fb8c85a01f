"""Nodes and edges of the recorded graph: seed facts, grad_fn names, saved tensors, forward steps, values."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import pytest
import torch
from torch import nn

from app.errors import LimitExceeded
from app.lessons import get_lesson
from app.recorder import Recorder, TraceOptions, trace_tensors
from app.schemas import Graph, OpNode, TensorNode
from app.tracing import trace_code
from tests.conftest import tensor_named


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


def _numel(shape: list[int]) -> int:
    count = 1
    for size in shape:
        count *= size
    return count


def _leaf_grad(graph: Graph, name: str) -> list:
    (node,) = [n for n in graph.nodes if isinstance(n, TensorNode) and n.name == name][-1:]
    assert node.grad is not None and node.grad.values is not None
    return node.grad.values


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


def test_a_saved_tensor_is_linked_by_the_memory_it_views() -> None:
    from app.recorder.options import TraceOptions
    from app.recorder.recorder import Recorder

    builder = Recorder("cpu", TraceOptions()).builder
    t = torch.arange(4.0)
    node_id = builder.tensor_node(t)
    builder.summaries.flush()
    assert builder._match_tensor(t) == node_id
    assert builder._match_tensor(t.detach()) == node_id  # another tensor, the same memory
    assert builder._match_tensor(t.clone()) is None
    assert builder._match_tensor(t[1:].detach()) is None  # memory of the node, another view
    assert builder._match_tensor(t.view(2, 2).detach()) is None
    assert builder._match_tensor(torch.empty(0)) is None
    assert builder._match_tensor(t.to_sparse()) is None


def _forward_by_node(tensors: list[torch.Tensor], in_sequence: bool, values: bool) -> str:
    """The nodes, edges and forward steps of live tensors, recorded as trace_tensors does (one
    loop, record_in_sequence) or node by node through discover, tensor_node,
    reconnect_outputs and tensor_inputs_of (the general path)."""
    recorder = Recorder("cpu", TraceOptions(values=values, max_nodes=100_000))
    builder = recorder.builder
    fns = recorder.passes.reachable([t.grad_fn for t in tensors])
    made_by: dict[int, list[torch.Tensor]] = {}
    for t in tensors:
        if t.grad_fn is not None:
            made_by.setdefault(id(t.grad_fn), []).append(t)
    ops = sorted((f for f in fns if f.name() != "torch::autograd::AccumulateGrad"), key=_seq)
    if in_sequence:
        builder.record_in_sequence(ops, made_by, 0)
    else:
        for fn in ops:
            found = builder.discover([fn], None, None, len(recorder.graph.forward))
            if not found:
                continue  # found by an earlier walk
            head = found[0]
            outputs = [builder.tensor_node(t) for t in made_by.get(id(fn), [])]
            builder.reconnect_outputs(outputs)
            op = builder.node(head).op  # type: ignore[union-attr]
            recorder.add_step(head, [head], op, builder.tensor_inputs_of(head), outputs, None, None)
    for t in tensors:
        builder.tensor_node(t)
    recorder.summaries.flush()
    graph = recorder.graph
    text = json.dumps(
        [[n.model_dump() for n in graph.nodes], graph.edges, graph.forward], default=dict
    )
    recorder.release()
    return text


def _seq(fn: object) -> int:
    return fn._sequence_nr()  # type: ignore[attr-defined]


def _in_a_new_thread(make: Callable[[], torch.Tensor]) -> torch.Tensor:
    """A tensor made in a fresh thread, whose autograd nodes count their order from zero."""
    made: list[torch.Tensor] = []
    worker = threading.Thread(target=lambda: made.append(make()))
    worker.start()
    worker.join()
    return made[0]


def _graphs() -> list[list[torch.Tensor]]:
    torch.manual_seed(0)
    x = torch.randn(3, 4, requires_grad=True)
    w = torch.randn(4, 2, requires_grad=True)
    y = x @ w
    early = (x * 2).sum()
    late = _in_a_new_thread(lambda: (early * 3 + x.sum()).exp())  # made before its producer
    parts = torch.randn(6, requires_grad=True).unbind(0)
    squared = x * x  # one producer on two edges
    a, b = torch.randn(5, requires_grad=True).split([2, 3])
    shared = torch.tanh(y)
    return [
        [(y.relu() + 1).sum()],
        [y.sum(), (y * 3).mean()],  # the second root consumes the first's producer
        [shared.sum(), (shared * shared).sum(), shared],  # a root consumed by another root
        [late],
        [(parts[0] * parts[3] - parts[5]).sum()],
        [squared.sum()],
        [(a.sum() * b.prod()).sigmoid(), a],
        [
            nn.functional.cross_entropy(
                torch.randn(4, 3, requires_grad=True), torch.tensor([0, 2, 1, 0])
            )
        ],
        [nn.LSTMCell(3, 5)(torch.randn(2, 3))[0].sum()],
    ]


@pytest.mark.parametrize("values", [True, False])
def test_record_in_sequence_records_what_discovery_node_by_node_records(values: bool) -> None:
    for tensors in _graphs():
        fast = _forward_by_node(tensors, in_sequence=True, values=values)
        general = _forward_by_node(tensors, in_sequence=False, values=values)
        assert fast == general
        assert '"forward"' not in fast and len(fast) > 100


def test_record_in_sequence_walks_a_producer_made_after_its_consumer() -> None:
    x = torch.randn(3, requires_grad=True)
    early = (x * 2).sum()
    late = _in_a_new_thread(lambda: early * 3)
    assert late.grad_fn._sequence_nr() < early.grad_fn._sequence_nr()
    graph = trace_tensors(late, names={"x": x})
    ops = [n for n in graph.nodes if isinstance(n, OpNode)]
    assert [n.grad_fn for n in ops] == [
        "MulBackward0",
        "SumBackward0",
        "MulBackward0",
        "AccumulateGrad",
    ]
    assert [s.node for s in graph.forward] == [ops[0].id]  # the rest came with its walk
    assert graph.backward[0].results[tensor_named(graph, "x").id].values == [6.0, 6.0, 6.0]


def test_record_in_sequence_stops_at_the_node_limit() -> None:
    y = torch.ones(2, requires_grad=True)
    for _ in range(30):
        y = y * 2
    with pytest.raises(LimitExceeded):
        trace_tensors(y.sum(), options=TraceOptions(max_nodes=20))
