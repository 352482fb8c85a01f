"""JSON bytes of models whose strings hold lone surrogates."""

from __future__ import annotations

from app.json_text import has_lone_surrogate, model_json_bytes
from app.schemas import Graph
from app.tracing import trace_code


def test_lone_surrogates_are_found() -> None:
    assert has_lone_surrogate("a\ud800") and has_lone_surrogate("\udfff")
    assert not has_lone_surrogate("名字 \U0001f600 \u2028")


def test_a_graph_with_surrogates_made_at_run_time_serialises() -> None:
    graph = trace_code(
        "import torch\nx = torch.ones(2, requires_grad=True)\ny = (x * 2).sum()\n"
        "print('\\ud800 ok')\n"
    )
    assert graph.stdout == "\ud800 ok\n"
    parsed = Graph.model_validate_json(model_json_bytes(graph))
    assert parsed.stdout == "\ufffd ok\n"
    assert parsed.model_dump(exclude={"stdout"}) == graph.model_dump(exclude={"stdout"})


def test_clean_graphs_serialise_as_pydantic_does() -> None:
    graph = trace_code("import torch\nx = torch.ones(2, requires_grad=True)\ny = (x * 3).sum()\n")
    assert model_json_bytes(graph) == graph.model_dump_json().encode()
