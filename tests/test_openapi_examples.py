"""The OpenAPI docs: every endpoint has an example, and every example is true."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from app import openapi_examples
from app.lessons import get_lesson, summaries
from app.schemas import (
    ErrorResponse,
    Example,
    ExampleSummary,
    Graph,
    Layout,
    LayoutRequest,
    RenderRequest,
    TraceRequest,
)
from app.status_schemas import DevicesResponse, HealthResponse
from tests.conftest import tensor_named

OPERATIONS = [
    ("get", "/api/v1/health"),
    ("post", "/api/v1/trace"),
    ("post", "/api/v1/layout"),
    ("post", "/api/v1/render"),
    ("get", "/api/v1/render"),
    ("get", "/api/v1/examples"),
    ("get", "/api/v1/examples/{example_id}"),
    ("get", "/api/v1/schema"),
    ("get", "/api/v1/devices"),
    ("get", "/api/v1/session"),
]


@pytest.fixture(scope="module")
def openapi(api_client: TestClient) -> dict:
    response = api_client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def test_the_docs_page_is_served(api_client: TestClient) -> None:
    page = api_client.get("/docs")
    assert page.status_code == 200 and "swagger" in page.text.lower()


def test_every_endpoint_is_documented_with_examples(openapi: dict) -> None:
    documented = {(m, p) for p, ops in openapi["paths"].items() for m in ops}
    assert documented == set(OPERATIONS)
    for method, path in OPERATIONS:
        operation = openapi["paths"][path][method]
        assert operation.get("description") or operation.get("summary"), (method, path)
        answers = operation["responses"]["200"]["content"]
        assert any("example" in c or "examples" in c for c in answers.values()), (method, path)
        if "requestBody" in operation:
            body = operation["requestBody"]["content"]["application/json"]
            assert body.get("examples"), (method, path)
        for parameter in operation.get("parameters", []):
            if parameter["required"]:
                assert parameter.get("examples"), (method, path, parameter["name"])


@pytest.mark.parametrize(
    ("path", "model"),
    [
        ("/api/v1/trace", TraceRequest),
        ("/api/v1/layout", LayoutRequest),
        ("/api/v1/render", RenderRequest),
    ],
)
def test_request_examples_are_valid_requests(openapi: dict, path: str, model: type) -> None:
    examples = openapi["paths"][path]["post"]["requestBody"]["content"]["application/json"][
        "examples"
    ]
    assert examples
    for example in examples.values():
        request = model.model_validate(example["value"])
        assert request.model_dump(exclude_unset=True) == example["value"]


def test_response_examples_match_their_models() -> None:
    Graph.model_validate(openapi_examples.GRAPH)
    Layout.model_validate(openapi_examples.GRAPH["layout"])
    HealthResponse.model_validate(openapi_examples.HEALTH)
    DevicesResponse.model_validate(openapi_examples.DEVICES)
    ErrorResponse.model_validate(openapi_examples.ERROR)
    listed = TypeAdapter(list[ExampleSummary]).validate_python(openapi_examples.EXAMPLE_SUMMARIES)
    assert listed[0] in summaries()
    assert Example.model_validate(openapi_examples.EXAMPLE) == get_lesson("implicit_backward")


def test_the_graph_example_is_what_trace_returns(api_client: TestClient) -> None:
    response = api_client.post("/api/v1/trace", json={"code": openapi_examples.TINY_PROGRAM})
    assert response.status_code == 200
    real = Graph.model_validate_json(response.content)
    shown = Graph.model_validate(openapi_examples.GRAPH)
    # The engine's sequence numbers count every node the process ever made: they differ.
    ignored = {"layout": True, "nodes": {"__all__": {"sequence_nr"}}}
    assert real.model_dump(exclude=ignored) == shown.model_dump(exclude=ignored)
    assert real.layout is not None and shown.layout is not None
    assert [n.id for n in real.layout.nodes] == [n.id for n in shown.layout.nodes]


def test_trace_examples_run(api_client: TestClient, openapi: dict) -> None:
    for example in openapi_examples.TRACE_REQUESTS.values():
        response = api_client.post("/api/v1/trace", json=example["value"])
        assert response.status_code == 200, response.text
        graph = Graph.model_validate_json(response.content)
        assert graph.error is None and graph.backward
    shared = openapi_examples.TRACE_REQUESTS["leaf used twice"]["value"]
    graph = Graph.model_validate_json(api_client.post("/api/v1/trace", json=shared).content)
    assert graph.backward[0].grads[tensor_named(graph, "w").id].values == [5.0]


def test_layout_and_render_examples_run(api_client: TestClient) -> None:
    (expand,) = openapi_examples.LAYOUT_REQUESTS.values()
    layout = api_client.post("/api/v1/layout", json=expand["value"])
    assert layout.status_code == 200
    assert [c.label for c in Layout.model_validate_json(layout.content).clusters] == ["0"]
    expected = {"svg": "image/svg+xml", "html": "text/html; charset=utf-8"}
    for example in openapi_examples.RENDER_REQUESTS.values():
        body = example["value"]
        rendered = api_client.post("/api/v1/render", json=body)
        assert rendered.status_code == 200, rendered.text
        assert rendered.headers["content-type"] == expected[body["format"]]
    (code,) = openapi_examples.RENDER_CODE_PARAMETER.values()
    linked = api_client.get("/api/v1/render", params={"code": code["value"]})
    assert linked.status_code == 200 and linked.content.lstrip().startswith(b"<?xml")


def test_the_example_id_parameter_names_a_real_example(
    api_client: TestClient, openapi: dict
) -> None:
    (parameter,) = openapi["paths"]["/api/v1/examples/{example_id}"]["get"]["parameters"]
    for example in parameter["examples"].values():
        assert (
            api_client.get(f"/api/v1/examples/{example['value']}").json()
            == openapi_examples.EXAMPLE
        )


def test_the_health_example_names_real_layers(api_client: TestClient) -> None:
    real = api_client.get("/api/v1/health").json()
    assert set(openapi_examples.HEALTH["layers"]) <= set(real["layers"])
    assert set(openapi_examples.HEALTH) == set(real)
