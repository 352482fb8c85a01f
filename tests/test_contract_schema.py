"""The JSON Schema of the Graph: valid draft 2020-12, true to what the API and the CLI send."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from app.contract_schema import graph_json_schema
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
