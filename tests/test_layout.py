"""Layout: every gallery graph fits its canvas without overlaps; modules collapse and expand."""

from __future__ import annotations

import pytest
import torch

from app.examples import all_examples, get_example
from app.graph_tracer import trace_callable
from app.layout import layout_graph, node_groups
from app.schemas import Layout
from app.tracing import trace_code
from benchmarks.models import encoder

pytestmark = pytest.mark.skipif(
    __import__("shutil").which("dot") is None, reason="graphviz dot is not installed"
)


def assert_well_placed(layout: Layout) -> None:
    assert layout.width > 0 and layout.height > 0
    for n in layout.nodes:
        assert -0.5 <= n.x and n.x + n.width <= layout.width + 0.5, n.id
        assert -0.5 <= n.y and n.y + n.height <= layout.height + 0.5, n.id
    nodes = layout.nodes
    for i, a in enumerate(nodes):
        for b in nodes[i + 1 :]:
            apart = (
                a.x + a.width <= b.x
                or b.x + b.width <= a.x
                or a.y + a.height <= b.y
                or b.y + b.height <= a.y
            )
            assert apart, f"{a.id} overlaps {b.id}"
    ids = {n.id for n in nodes}
    for edge in layout.edges:
        assert edge.source in ids and edge.target in ids and edge.path.startswith("M")


@pytest.mark.parametrize("example", all_examples(), ids=lambda e: e.id)
def test_gallery_layouts_fit_without_overlap(example) -> None:
    graph = trace_code(example.code)
    layout = layout_graph(graph)
    assert_well_placed(layout)
    shown = {n.id for n in layout.nodes}
    assert set(layout.node_of) == {n.id for n in graph.nodes}
    assert set(layout.node_of.values()) == shown


def test_leaves_on_top_and_accumulate_grad_beside_its_leaf() -> None:
    graph = trace_code(get_example("linear_expression").code)
    layout = layout_graph(graph)
    by_id = {n.id: n for n in layout.nodes}
    named = {n.name: n.id for n in graph.nodes if n.kind == "tensor" and n.name}
    assert by_id[named["w"]].y < by_id[named["y"]].y
    acc = next(n for n in graph.nodes if n.kind == "op" and n.variable == named["w"])
    assert abs(by_id[acc.id].y - by_id[named["w"]].y) < 1


def test_modules_collapse_by_default_and_expand_level_by_level() -> None:
    graph = trace_code(get_example("mlp_cross_entropy").code)
    collapsed = layout_graph(graph)
    boxes = {n.id: n for n in collapsed.nodes if n.kind == "module"}
    assert set(boxes) == {"group:fc1", "group:fc2"}
    fc1 = boxes["group:fc1"]
    assert fc1.parameters == 8 * 16 + 16 and fc1.shape == [6, 16]
    assert collapsed.collapsible == ["fc1", "fc2"]
    expanded = layout_graph(graph, ["fc1"])
    assert_well_placed(expanded)
    assert "group:fc1" not in {n.id for n in expanded.nodes}
    assert [c.label for c in expanded.clusters] == ["fc1"]
    weight = next(n.id for n in graph.nodes if n.kind == "tensor" and n.name == "net.fc1.weight")
    assert expanded.node_of[weight] == weight and collapsed.node_of[weight] == "group:fc1"


def test_big_encoder_first_view_is_small_and_expands() -> None:
    torch.manual_seed(0)
    model = encoder(24)
    graph, _ = trace_callable(
        lambda: model(torch.randn(2, 8, 32)).pow(2).mean(), names={"model": model}
    )
    assert len(graph.nodes) > 1500
    first = layout_graph(graph)
    assert len(first.nodes) < 12
    one_level = layout_graph(graph, ["layers"])
    assert len([n for n in one_level.nodes if n.kind == "module"]) == 24
    inside = layout_graph(graph, ["layers", "layers.3"])
    assert_well_placed(inside)
    assert any(
        n.module and n.module.startswith("layers.3") and n.kind == "op" for n in inside.nodes
    )


def test_module_less_big_graphs_group_by_line() -> None:
    code = "import torch\nx = torch.ones(2, requires_grad=True)\ny = x\nfor i in range(200):\n    y = y * 1.01\n    y = y + 0.5\n"
    graph = trace_code(code)
    groups = node_groups(graph)
    assert {"line:5", "line:6"} <= set(groups.values())
    layout = layout_graph(graph)
    assert {"group:line:5", "group:line:6"} <= {n.id for n in layout.nodes}
    assert len(layout.nodes) < 12
    opened = layout_graph(graph, ["line:5"])
    assert len(opened.nodes) > 200


def test_module_names_with_quotes_reach_dot_escaped() -> None:
    key = 'odd" -> evil; x="'
    code = (
        "import torch\nimport torch.nn as nn\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        f"        self.blocks = nn.ModuleDict({{'{key}': nn.Linear(2, 2)}})\n"
        "    def forward(self, x):\n"
        f"        return self.blocks['{key}'](x)\n"
        "y = Net()(torch.ones(1, 2)).sum()\n"
    )
    graph = trace_code(code)
    assert graph.error is None, graph.error
    paths = {n.module for n in graph.nodes if n.kind == "op" and n.module}
    inner = f"blocks.{key}".replace("\\", "")
    assert paths == {inner}
    collapsed = layout_graph(graph)
    assert "group:blocks" in {n.id for n in collapsed.nodes}
    expanded = layout_graph(graph, ["blocks", inner])
    assert_well_placed(expanded)
    assert {c.label for c in expanded.clusters} == {"blocks", inner}


def test_fully_expanded_nesting_keeps_every_box() -> None:
    code = (
        get_example("dynamic_net")
        .code.replace("DynamicNet(3, 5, 2)", "Wrapper()")
        .replace(
            "model = Wrapper()",
            "class Wrapper(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
            "        self.net = DynamicNet(3, 5, 2)\n    def forward(self, x, depth):\n"
            "        return self.net(x, depth)\n\n\nmodel = Wrapper()",
        )
    )
    graph = trace_code(code)
    assert graph.error is None, graph.error
    groups = {n.module for n in graph.nodes if n.kind == "op" and n.module}
    assert groups == {"net", "net.input_linear", "net.middle_linear", "net.output_linear"}
    everything = sorted(groups)
    layout = layout_graph(graph, everything)
    assert_well_placed(layout)
    assert set(layout.node_of.values()) == {n.id for n in layout.nodes}
    assert set(layout.node_of) == {n.id for n in graph.nodes}
    assert all(layout.node_of[n.id] == n.id for n in graph.nodes)  # nothing hidden in a box
