"""The JSON Schema of the Graph: valid draft 2020-12, true to what the API and the CLI send."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from app.schemas import Graph, graph_json_schema
from app.tracing import trace_code
from tests.conftest import SAFE_PROGRAM

jsonschema = pytest.importorskip("jsonschema")


def validator(schema: dict):
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def test_schema_is_draft_2020_12_and_names_the_contract() -> None:
    schema = graph_json_schema()
    assert validator(schema).META_SCHEMA["$id"].startswith("https://json-schema.org/draft/2020-12")
    assert schema["title"] == "Graph" and schema["additionalProperties"] is False
    assert {"nodes", "edges", "forward", "backward", "error", "layout"} <= set(schema["properties"])


def test_api_schema_validates_a_real_trace_response(api_client: TestClient) -> None:
    served = api_client.get("/api/v1/schema")
    assert served.status_code == 200 and served.json() == graph_json_schema()
    response = api_client.post("/api/v1/trace", json={"code": SAFE_PROGRAM})
    assert response.status_code == 200
    graph = response.json()
    assert graph["layout"]["nodes"]  # the laid-out answer, as the browser gets it
    check = validator(served.json())
    assert list(check.iter_errors(graph)) == []
    broken = {**graph, "nodes": [{**graph["nodes"][0], "kind": "planet"}, *graph["nodes"][1:]]}
    assert list(check.iter_errors(broken))
    assert list(check.iter_errors({**graph, "surprise": 1}))


def test_non_finite_values_travel_as_strings_the_schema_allows() -> None:
    graph = trace_code(
        "import torch\nw = torch.tensor([-1.0, 1.0], requires_grad=True)\n"
        "y = torch.log(w).sum()\nz = w / 0\n"
    )
    sent = json.loads(graph.model_dump_json())
    assert {"NaN", "Infinity"} & set(json.dumps(sent).replace('"', " ").split())
    assert list(validator(graph_json_schema()).iter_errors(sent)) == []


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
