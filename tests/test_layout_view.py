"""A view's cost to lay out: it grows with long edges and spares every lesson."""

from __future__ import annotations

from app.dot_run import DotLimits
from app.layout_groups import collapsible_groups, node_groups, view_units
from app.layout_view import layout_cost
from app.lessons import all_lessons, get_lesson
from app.tracing import trace_code


def cat_of_all_earlier(n: int, one_line: bool) -> str:
    """A program where each step concatenates every tensor made before it (n*n/2 edges, most
    of them long): a few hundred boxes that once ran dot out of time."""
    if one_line:
        return (
            "import torch\nx = torch.ones(1, requires_grad=True)\nts = [x]\n"
            f"for i in range({n}):\n    ts.append(torch.cat(ts)[:1] * 1)\nts[-1].sum().backward()\n"
        )
    lines = ["import torch", "t0 = torch.ones(1, requires_grad=True)"]
    for i in range(1, n + 1):
        earlier = ", ".join(f"t{j}" for j in range(i))
        lines.append(f"t{i} = torch.cat([{earlier}])[:1] * 1")
    return "\n".join([*lines, f"t{n}.sum().backward()", ""])


def cost_of(graph, expand_all: bool = True) -> int:  # noqa: ANN001 - a Graph
    groups = node_groups(graph)
    expanded = set(collapsible_groups(groups)) if expand_all else set()
    return layout_cost(graph, view_units(graph, groups, expanded))


def test_the_layout_cost_grows_with_long_edges_and_spares_the_gallery() -> None:
    costs = [cost_of(trace_code(cat_of_all_earlier(n, one_line=False))) for n in (5, 10, 20)]
    assert costs[0] < costs[1] < costs[2] and costs[2] > DotLimits().max_cost
    for example in all_lessons():  # every lesson fully expanded stays under the default
        assert cost_of(trace_code(example.code)) <= DotLimits().max_cost, example.id
    assert cost_of(trace_code(get_lesson("transformer_encoder").code)) > 1000
