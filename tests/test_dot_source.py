"""The DOT source of a view: nodes read in the order the program's calls used them."""

from __future__ import annotations

from app.dot_source import reading_order
from app.lessons import get_lesson
from app.pass_view import pass_subgraph
from app.tracing import trace_code


def test_reading_order_follows_the_calls_of_the_part_shown() -> None:
    graph = trace_code(get_lesson("grad_accumulation").code)
    for p in range(4):
        part = pass_subgraph(graph, p)
        rank = reading_order(part)
        names = {n.label: n.id for n in part.nodes if n.kind == "tensor"}
        assert [n for n in sorted(names, key=lambda k: rank[names[k]])] == ["w", "x", "a", "b", "y"]
