"""Edges drawn beside the boxes: the page's layout and graphviz's SVG draw the same ones."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from app.dot_run import dot_available
from app.export import THEMES, graph_svg
from app.layout import layout_graph
from app.side_edges import Box, add_side_edges, side_curve, svg_boxes
from app.tracing import trace_code
from tests.test_repeat_fold import LSTM_LINE, LSTM_PROGRAM, LSTM_STEPS

needs_dot = pytest.mark.skipif(not dot_available(), reason="graphviz dot is not installed")
SVG_NS = "{http://www.w3.org/2000/svg}"
FOLD = f"fold:line:{LSTM_LINE}"
END = re.compile(r"(-?\d+\.\d+),(-?\d+\.\d+)$")


def test_a_curve_runs_down_the_side_nearer_its_source() -> None:
    weight, step = Box(0, 0, 100, 40), Box(300, 200, 80, 40)
    left = side_curve(weight, step)
    assert (left.sx, left.tx, left.bend) == (0, 300, 0.0)  # kept inside the drawing
    right = side_curve(Box(500, 0, 100, 40), step)
    assert (right.sx, right.tx, right.bend) == (600, 380, 628.0)
    assert (right.sy, right.ty) == (20, 220)


def test_pairs_naming_a_box_the_svg_lacks_are_left_out() -> None:
    svg = (
        '<svg><g id="graph0" class="graph" transform="scale(1 1) rotate(0) translate(4 100)">'
        '<g id="node1" class="node"><title>a</title><polygon points="0,-90 50,-90 50,-70 0,-70 '
        '0,-90"/></g><g id="node2" class="node"><title>b</title><polygon points="0,-40 50,-40 '
        '50,-20 0,-20 0,-40"/></g></g></svg>'
    )
    assert svg_boxes(svg) == {"a": Box(0, -90, 50, 20), "b": Box(0, -40, 50, 20)}
    drawn = add_side_edges(svg, [("a", "b"), ("a", "missing")], "#123456")
    edges = [g for g in ET.fromstring(drawn).iter("g") if g.get("class") == "edge side"]
    assert [e.findtext("title") for e in edges] == ["a->b"]
    assert drawn.index('class="edge side"') < drawn.index('id="node1"')  # under the boxes


@needs_dot
def test_the_svg_export_draws_every_edge_the_page_draws() -> None:
    graph = trace_code(LSTM_PROGRAM)
    page = layout_graph(graph, [FOLD])
    svg = graph_svg(graph, [FOLD], None, "light", "en").decode()
    root = ET.fromstring(svg)
    edges = [g for g in root.iter(f"{SVG_NS}g") if "edge" in (g.get("class") or "").split()]
    assert len(edges) == len(page.edges)
    side = [g for g in edges if "side" in g.get("class", "").split()]
    # the four weights and biases of the cell go into every iteration after the first
    assert len(side) == 4 * (LSTM_STEPS - 1)
    boxes = svg_boxes(svg)
    colour = THEMES["light"]["edge"]
    for edge in side:
        target = boxes[edge.findtext(f"{SVG_NS}title").split("->")[1]]
        arrow = edge.find(f"{SVG_NS}polygon")
        assert arrow.get("fill") == colour
        tip_x, tip_y = (float(v) for v in arrow.get("points").split()[0].split(","))
        assert min(abs(tip_x - target.x), abs(tip_x - target.x - target.width)) < 0.11
        assert target.y <= tip_y <= target.y + target.height


@needs_dot
def test_past_the_cap_the_svg_says_how_many_edges_it_left_out(monkeypatch) -> None:
    import app.export as export

    monkeypatch.setattr(export, "MAX_SIDE_EDGES", 4 * (LSTM_STEPS - 1) - 1)
    graph = trace_code(LSTM_PROGRAM)
    svg = graph_svg(graph, [FOLD], None, "light", "zh").decode()
    assert 'class="edge side"' not in svg
    assert f"共享权重进入循环后续迭代的 {4 * (LSTM_STEPS - 1)} 条边未画出" in svg
