"""An answer over the byte limit keeps statistics first, then the first nodes."""

from __future__ import annotations

import json

from app.graph_budget import fit_to_bytes
from app.json_text import model_json_bytes
from app.schemas import Graph
from app.tracing import trace_code

PROGRAM = (
    "import torch\nw = torch.linspace(-1, 1, 40, requires_grad=True)\ny = w\n"
    "for i in range(30):\n    y = (y * 1.01).tanh()\nloss = y.sum()\nloss.backward()\n"
)


def test_a_graph_within_the_limit_is_unchanged() -> None:
    graph = trace_code(PROGRAM)
    before = model_json_bytes(graph)
    assert fit_to_bytes(graph, len(before)) == before


def test_values_are_summarised_before_any_node_is_dropped() -> None:
    full = model_json_bytes(trace_code(PROGRAM))
    graph = trace_code(PROGRAM)
    payload = fit_to_bytes(graph, len(full) - 1)
    assert payload is not None and len(payload) < len(full)
    data = Graph.model_validate_json(payload)
    assert len(data.nodes) == len(trace_code(PROGRAM).nodes)
    w = next(n for n in data.nodes if n.kind == "tensor" and n.name == "w")
    assert w.value.values is None and w.value.stats is not None and w.grad.stats is not None
    assert [m.key for m in data.messages] == ["responseValuesSummarised"]


def test_then_the_first_nodes_are_kept_with_every_reference_inside() -> None:
    assert fit_to_bytes(trace_code(PROGRAM), 10) is None  # not even one node fits
    limit = len(model_json_bytes(trace_code(PROGRAM))) // 8
    payload = fit_to_bytes(trace_code(PROGRAM), limit)
    assert payload is not None and len(payload) <= limit
    data = json.loads(payload)
    ids = {n["id"] for n in data["nodes"]}
    assert 0 < len(ids) < len(trace_code(PROGRAM).nodes)
    assert all(e["source"] in ids and e["target"] in ids for e in data["edges"])
    assert all(s["node"] in ids for p in data["backward"] for s in p["steps"])
    assert all(set(s["inputs"]) <= ids for s in data["forward"])
    keys = [m["key"] for m in data["messages"]]
    assert keys == ["responseValuesSummarised", "responseNodesDropped"]
    Graph.model_validate(data)
