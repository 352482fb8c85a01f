"""The engine's order worked out without running a pass equals the order torch's engine ran."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from app.recorder import trace_tensors
from app.schemas import Graph, TensorNode


def _mlp() -> list[torch.Tensor]:
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    x, y = torch.randn(5, 4), torch.tensor([0, 2, 1, 1, 0])
    return [nn.functional.cross_entropy(model(x), y)]


def _encoder() -> list[torch.Tensor]:
    layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True)
    encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
    return [encoder(torch.randn(2, 5, 16)).pow(2).mean()]


def _lstm() -> list[torch.Tensor]:
    cell = nn.LSTMCell(3, 6)
    h = c = torch.zeros(1, 6)
    for x in torch.randn(6, 1, 3):
        h, c = cell(x, (h, c))
    return [h.sum()]


def _conv() -> list[torch.Tensor]:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 3))
    return [net(torch.randn(2, 3, 8, 8)).mean()]


def _two_roots() -> list[torch.Tensor]:
    a = torch.randn(3, requires_grad=True)
    b = (a * 2).sum()
    return [b, (a * b).exp().sum()]


def _shared() -> list[torch.Tensor]:
    w = torch.randn(3, requires_grad=True)
    u = torch.randn(3, requires_grad=True)
    y = w * w
    return [(y + y.sin() * w).sum(), (u * w).sum()]


BUILDS: dict[str, Callable[[], list[torch.Tensor]]] = {
    "mlp": _mlp,
    "encoder": _encoder,
    "lstm": _lstm,
    "conv": _conv,
    "two_roots": _two_roots,
    "shared": _shared,
}


def _order(graph: Graph) -> list[list[str]]:
    return [[step.node for step in record.steps] for record in graph.backward]


@pytest.mark.parametrize("name", BUILDS)
def test_the_worked_out_order_is_the_engines(name: str) -> None:
    torch.manual_seed(0)
    roots = BUILDS[name]()
    ran = trace_tensors(*roots)
    worked_out = trace_tensors(*roots, values=False)
    assert len(_order(ran)) == 1 and len(_order(ran)[0]) > 1
    assert _order(worked_out) == _order(ran)
    assert [n.id for n in worked_out.nodes] == [n.id for n in ran.nodes]
    assert [e.source + e.target for e in worked_out.edges] == [
        e.source + e.target for e in ran.edges
    ]
    (record,) = worked_out.backward
    (truth,) = ran.backward
    assert set(record.results) == set(truth.results)
    assert set(record.tensor_grads) == set(truth.tensor_grads)


def test_a_structure_only_recording_holds_shapes_and_no_values() -> None:
    torch.manual_seed(0)
    (loss,) = _mlp()
    graph = trace_tensors(loss, values=False)
    tensors = [n for n in graph.nodes if isinstance(n, TensorNode)]
    assert tensors and all(n.value.values is None and n.value.stats is None for n in tensors)
    assert all(n.value.shape == n.shape for n in tensors)
    assert not graph.series
    assert all(step.rule is None and not step.grad_inputs for step in graph.backward[0].steps)
    weight = next(n for n in tensors if n.shape == [8, 4])
    assert graph.backward[0].results[weight.id].shape == [8, 4]
    Graph.model_validate_json(graph.model_dump_json())  # within the contract


def test_trace_callable_records_the_structure_alone_in_the_engines_order() -> None:
    from app.recorder import trace_callable

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    x = torch.randn(3, 4)
    ran, _ = trace_callable(lambda: model(x).sum(), names={"model": model})
    worked_out, result = trace_callable(
        lambda: model(x).sum(), names={"model": model}, values=False
    )
    assert result.item() == pytest.approx(model(x).sum().item())
    assert _order(worked_out) == _order(ran) and len(_order(ran)[0]) >= 5
    assert [n.label for n in worked_out.nodes] == [n.label for n in ran.nodes]
    assert all(
        n.value.values is None and n.value.stats is None
        for n in worked_out.nodes
        if isinstance(n, TensorNode)
    )
