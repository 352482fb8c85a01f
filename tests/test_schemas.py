"""The contract's models: what the server sets on a graph's nodes whatever the JSON said."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from app.schemas import Graph
from app.tracing import trace_code


def test_the_served_graph_says_how_each_node_looks(api_client: TestClient) -> None:
    code = (
        "import torch\nfrom torch import nn\nlayer = nn.Linear(2, 1)\n"
        "x = torch.ones(2)\nw = torch.ones(2, requires_grad=True)\n"
        "y = (layer(x) * w).sum()\ny.backward()\n"
    )
    response = api_client.post("/api/v1/trace", json={"code": code})
    assert response.status_code == 200
    nodes = response.json()["nodes"]
    looks = {n["name"]: n["look"] for n in nodes if n["kind"] == "tensor" and n["name"]}
    assert looks["x"] == "const" and looks["w"] == "leaf" and looks["y"] == "tensor"
    params = {n["look"] for n in nodes if n["kind"] == "tensor" and n["is_parameter"]}
    assert params == {"param"}
    ops = {n["grad_fn"]: n["look"] for n in nodes if n["kind"] == "op"}
    assert ops["AccumulateGrad"] == "acc" and ops["MulBackward0"] == "op"


def test_a_node_cannot_claim_another_look_than_its_fields_give() -> None:
    graph = trace_code("import torch\nw = torch.ones(2, requires_grad=True)\ny = (w * 2).sum()\n")
    recorded = {n.label: n.look for n in graph.nodes}  # the recorder sets it (notebook, CLI)
    assert recorded["w"] == "leaf" and recorded["mul"] == "op" and "acc" in recorded.values()
    sent = json.loads(graph.model_dump_json())
    for node in sent["nodes"]:
        node["look"] = "const" if node["kind"] == "tensor" else "acc"
    read = Graph.model_validate(sent)
    looks = {n.label: n.look for n in read.nodes}
    assert looks["w"] == "leaf" and looks["mul"] == "op"
