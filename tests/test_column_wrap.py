"""Tall layouts wrap into columns for a wide frame, keep every box apart, and every edge drawn."""

from __future__ import annotations

import itertools

import pytest

from app.badges import badge_track
from app.column_wrap import fit_score
from app.dot_run import dot_available
from app.layout import layout_graph
from app.lessons import get_lesson
from app.pass_view import pass_subgraph
from app.tracing import trace_code

pytestmark = pytest.mark.skipif(not dot_available(), reason="graphviz's dot is not installed")

CHAIN = (
    "import torch\nx = torch.tensor([0.5], requires_grad=True)\ny = x\n"
    + "".join(f"y = torch.sin(y) * {i + 2}\n" for i in range(8))
    + "y.backward()\n"
)


@pytest.fixture(scope="module")
def chain():
    graph = trace_code(CHAIN)
    graph.badges = badge_track(graph)
    return graph


def overlaps(layout) -> list[tuple[str, str]]:
    boxes = [(n.id, n.x, n.y, n.x + n.width, n.y + n.height) for n in layout.nodes]
    return [
        (a[0], b[0])
        for a, b in itertools.combinations(boxes, 2)
        if a[1] < b[3] and b[1] < a[3] and a[2] < b[4] and b[2] < a[4]
    ]


def test_a_long_chain_wraps_into_columns_that_show_it_larger_in_a_wide_frame(chain) -> None:
    wide = layout_graph(chain, aspect=2.0)
    tall = layout_graph(chain, aspect=0.4)  # a portrait frame keeps one column
    assert wide.width > tall.width and wide.height < tall.height / 2
    assert fit_score(wide.width, wide.height, 2.0) > 1.5 * fit_score(tall.width, tall.height, 2.0)
    assert overlaps(wide) == []
    assert {n.id for n in wide.nodes} == {n.id for n in tall.nodes}
    assert len(wide.edges) == len(tall.edges) and all(e.path.startswith("M") for e in wide.edges)
    assert all(0 <= n.x and n.x + n.width <= wide.width + 1 for n in wide.nodes)
    assert all(0 <= n.y and n.y + n.height <= wide.height + 1 for n in wide.nodes)


def test_an_edge_between_columns_leaves_its_source_sideways_into_its_target(chain) -> None:
    layout = layout_graph(chain, aspect=2.0)
    by_id = {n.id: n for n in layout.nodes}
    jumps = [e for e in layout.edges if by_id[e.target].y < by_id[e.source].y]
    assert jumps, "a wrapped chain has an edge from the foot of a column to the next one's head"
    for edge in jumps:
        start = [float(v) for v in edge.path[1:].split()[0].split(",")]
        end = [float(v) for v in edge.path.split()[-1].split(",")]
        source, target = by_id[edge.source], by_id[edge.target]
        assert start == pytest.approx(
            [source.x + source.width, source.y + source.height / 2], abs=0.2
        )
        assert end == pytest.approx([target.x, target.y + target.height / 2], abs=0.2)
        assert start[0] < end[0]  # the next column stands to the right


def test_a_lesson_of_a_training_loop_wraps_each_pass_the_same_way() -> None:
    graph = trace_code(get_lesson("linear_regression").code)
    graph.badges = badge_track(graph)
    orders = []
    for index in (0, 1):
        layout = layout_graph(pass_subgraph(graph, index), aspect=2.0)
        labels = {n.id: n.label for n in layout.nodes}
        orders.append([labels[n.id] for n in sorted(layout.nodes, key=lambda n: (n.x, n.y))])
    assert orders[0] == orders[1]


def test_edges_crossing_each_cut_are_counted_as_one_by_one_counting_would() -> None:
    from app.column_wrap import _crossings

    level = {"a": 0.0, "b": 10.0, "c": 20.0, "d": 30.0, "e": 10.0}
    links = [("a", "b"), ("b", "c"), ("a", "d"), ("e", "c"), ("d", "c"), ("b", "e")]
    tops = sorted(set(level.values()))
    counted = _crossings(tops, level, links)
    for cut in tops:
        assert counted[cut] == sum(1 for a, b in links if (level[a] < cut) != (level[b] < cut))
