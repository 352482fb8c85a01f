"""Layout: every gallery graph fits its canvas without overlaps; modules collapse and expand."""

from __future__ import annotations

import pytest
import torch

from app.dot_run import DotLimits, run_dot
from app.dot_source import to_dot
from app.errors import LimitExceeded
from app.layout import layout_graph
from app.layout_boxes import LABEL_CHARS, clip_label
from app.layout_groups import node_groups
from app.layout_view import visible_boxes
from app.lessons import ORDER, all_lessons, get_lesson
from app.pass_view import layout_pass, pass_subgraph
from app.recorder import trace_callable
from app.schemas import Layout
from app.tracing import trace_code
from benchmarks.models import encoder
from tests.test_layout_view import cat_of_all_earlier, cost_of

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


@pytest.mark.parametrize("example", all_lessons(), ids=lambda e: e.id)
def test_gallery_layouts_fit_without_overlap(example) -> None:
    graph = trace_code(example.code)
    layout = layout_graph(graph)
    assert_well_placed(layout)
    shown = {n.id for n in layout.nodes}
    assert set(layout.node_of) == {n.id for n in graph.nodes}
    assert set(layout.node_of.values()) == shown


def test_leaves_on_top_and_accumulate_grad_beside_its_leaf() -> None:
    graph = trace_code(get_lesson("linear_expression").code)
    layout = layout_graph(graph)
    by_id = {n.id: n for n in layout.nodes}
    named = {n.name: n.id for n in graph.nodes if n.kind == "tensor" and n.name}
    assert by_id[named["w"]].y < by_id[named["y"]].y
    acc = next(n for n in graph.nodes if n.kind == "op" and n.variable == named["w"])
    assert abs(by_id[acc.id].y - by_id[named["w"]].y) < 1


def test_modules_collapse_by_default_and_expand_level_by_level() -> None:
    graph = trace_code(get_lesson("mlp_cross_entropy").code)
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
    # the box reads as its parameter does: net.fc1 holds net.fc1.weight
    assert fc1.label == "net.fc1 · Linear(8→16)"


def test_module_boxes_read_by_the_programs_path() -> None:
    code = (
        "import torch\nfrom torch import nn\n"
        "model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 1))\n"
        "model(torch.randn(4, 20)).sum().backward()\n"
        "nn.Linear(1, 1)(torch.ones(1, 1)).sum().backward()\n"  # held by no variable
    )
    graph = trace_code(code)
    layout = layout_graph(graph)
    labels = sorted(n.label for n in layout.nodes if n.kind == "module")
    assert labels == [
        "model.0 · Linear(20→32)",
        "model.1 · ReLU",
        "model.2 · Linear(32→1)",
    ]
    assert {n.name for n in graph.nodes if n.kind == "tensor" and n.is_parameter} >= {
        "model.0.weight",
        "model.2.bias",
    }
    # the paths a page expands and collapses by stay as recorded
    assert layout.collapsible == ["0", "1", "2"]
    assert graph.module_paths == {"0": "model.0", "1": "model.1", "2": "model.2"}


def test_big_encoder_first_view_is_small_and_expands() -> None:
    torch.manual_seed(0)
    model = encoder(24)
    graph, _ = trace_callable(
        lambda: model(torch.randn(2, 8, 32)).pow(2).mean(), names={"model": model}
    )
    assert len(graph.nodes) > 1500
    first = layout_graph(graph)
    assert len(first.nodes) < 12
    one_level = layout_graph(graph, ["layers"])  # the 24 layers repeat: one box
    assert [n.label for n in one_level.nodes if n.kind == "fold"] == [
        "model.layers × 24 · TransformerEncoderLayer"
    ]
    unfolded = layout_graph(graph, ["layers", "fold:layers.0"])
    assert len([n for n in unfolded.nodes if n.kind == "module"]) == 24
    inside = layout_graph(graph, ["layers", "fold:layers.0", "layers.3"])
    assert_well_placed(inside)
    assert any(
        n.module and n.module.startswith("layers.3") and n.kind == "op" for n in inside.nodes
    )


def test_module_less_big_graphs_group_by_line() -> None:
    code = "import torch\nx = torch.ones(2, requires_grad=True)\ny = x\nfor i in range(200):\n    y = y * 1.01\n    y = y + 0.5\n"
    graph = trace_code(code)
    groups = node_groups(graph)
    assert {"line:5", "line:6"} <= set(groups.values())
    layout = layout_graph(graph)  # the loop's two lines run in turn 200 times: one fold
    assert [n.label for n in layout.nodes if n.kind == "fold"] == ["line 5-6 × 200"]
    assert len(layout.nodes) < 12
    assert layout.folds["fold:line:5-6"] == [f"line:5-6#{i}" for i in range(1, 201)]
    opened = layout_graph(graph, ["*"])
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
        get_lesson("dynamic_net")
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
    calls = {"net.middle_linear", "net.middle_linear#2", "net.middle_linear#3"}  # depth 3
    assert groups == {"net", "net.input_linear", "net.output_linear"} | calls
    everything = sorted(groups)
    layout = layout_graph(graph, everything)
    assert_well_placed(layout)
    assert set(layout.node_of.values()) == {n.id for n in layout.nodes}
    assert set(layout.node_of) == {n.id for n in graph.nodes}
    assert all(layout.node_of[n.id] == n.id for n in graph.nodes)  # nothing hidden in a box


ODD_KEY = 'a\\b "q" <!-- </script> \u2028 ünï 名字 {x}; -> y'


def odd_module_graph():
    code = (
        "import torch\nimport torch.nn as nn\n"
        "class Net(nn.Module):\n"
        "    def __init__(self, key):\n"
        "        super().__init__()\n"
        "        self.blocks = nn.ModuleDict({key: nn.Linear(2, 2)})\n"
        "        self.key = key\n"
        "    def forward(self, x):\n"
        "        return self.blocks[self.key](x)\n"
        f"y = Net({ODD_KEY!r})(torch.ones(1, 2)).sum()\n"
        "y.backward()\n"
    )
    graph = trace_code(code)
    assert graph.error is None, graph.error
    return graph


def test_any_module_name_lays_out_in_every_view() -> None:
    graph = odd_module_graph()
    inner = f"blocks.{ODD_KEY}"
    for expanded in ([], ["blocks"], ["blocks", inner]):
        layout = layout_graph(graph, expanded)
        assert_well_placed(layout)
        assert set(layout.node_of) == {n.id for n in graph.nodes}
    (box,) = [n for n in layout_graph(graph, ["blocks"]).nodes if n.kind == "module"]
    # the box names its path and the module's class (recorded by the tracer)
    assert box.id == f"group:{inner}"
    assert box.label == clip_label(f"{inner} · {graph.modules[inner]}")
    assert {c.label for c in layout_graph(graph, ["blocks", inner]).clusters} == {"blocks", inner}


def test_labels_reaching_dot_are_clipped() -> None:
    long_name = "x" * 4500
    graph = trace_code(
        f"import torch\n{long_name} = torch.ones(2, requires_grad=True)\n"
        f"y = ({long_name} * 2).sum()\n"
    )
    source, boxes, _ = to_dot(graph, set())
    assert long_name not in source
    assert max(len(box.label) for box in boxes.values()) == LABEL_CHARS
    assert clip_label("a\x00b\x1bc\ud800") == "a\ufffdb\ufffdc\ufffd"
    assert clip_label("名" * 200).endswith("…") and len(clip_label("名" * 200)) == LABEL_CHARS


def dense_graph(leaves: int, rounds: int):
    """torch.cat of many leaves, repeated: many edges between few nodes."""
    graph = trace_code(
        "import torch\n"
        f"leaves = [torch.ones(1, requires_grad=True) for i in range({leaves})]\n"
        "g = torch.ones(1, requires_grad=True)\n"
        f"for i in range({rounds}):\n"
        "    g = torch.cat(leaves + [g]).sum(0, keepdim=True)\n"
        "g.backward()\n"
    )
    assert graph.error is None, graph.error
    return graph


def test_graphs_past_the_edge_cap_are_grouped_by_line_then_refused() -> None:
    graph = dense_graph(60, 4)  # 8 ops outside modules: not grouped by line on their own
    assert not any(g for g in node_groups(graph).values())
    flat = layout_graph(graph, [], DotLimits(max_edges=10_000))
    assert flat.collapsible == [] and len(flat.nodes) == len(graph.nodes)
    grouped = layout_graph(graph, [], DotLimits(max_edges=100))
    assert "line:5" in grouped.collapsible and "group:line:5" in {n.id for n in grouped.nodes}
    with pytest.raises(LimitExceeded) as refused:
        layout_graph(graph, ["line:5"], DotLimits(max_edges=100))
    assert refused.value.limit == "edges"


@pytest.mark.parametrize("example", ORDER)
def test_no_lesson_draws_a_cycle_when_collapsed(example: str) -> None:
    graph = trace_code(get_lesson(example).code)
    boxes, units = visible_boxes(graph, set())
    edges = {(units.unit_of[e.source], units.unit_of[e.target]) for e in graph.edges}
    edges = {(a, b) for a, b in edges if a != b}
    incoming = {box: 0 for box in boxes}
    for _, target in edges:
        incoming[target] += 1
    ready = [box for box, count in incoming.items() if count == 0]
    ordered = 0
    while ready:
        box = ready.pop()
        ordered += 1
        for source, target in edges:
            if source == box:
                incoming[target] -= 1
                if incoming[target] == 0:
                    ready.append(target)
    assert ordered == len(boxes), "a box is reached again from its own output"


def _placed_by_label(graph, pass_index: int) -> list[tuple[str, float, float]]:
    layout = layout_pass(graph, [], pass_index)
    assert layout.pass_index == pass_index
    return sorted((n.label, round(n.x, 1), round(n.y, 1)) for n in layout.nodes)


def test_every_pass_of_a_loop_is_laid_out_alike() -> None:
    graph = trace_code(get_lesson("grad_accumulation").code)
    assert len(graph.backward) == 4
    placed = [_placed_by_label(graph, p) for p in range(4)]
    x_of = [{label: x for label, x, _ in boxes} for boxes in placed]
    order = [sorted(("w", "x", "a", "b"), key=xs.__getitem__) for xs in x_of]
    assert order == [order[0]] * 4, order  # pass 3 once swapped w/x and a/b
    assert placed == [placed[0]] * 4  # same boxes, same places


def test_passes_drawn_alike_get_the_same_places_despite_their_values() -> None:
    # w1 and w2 change every iteration, so the badges under the boxes differ in width
    graph = trace_code(get_lesson("two_layer_relu").code)
    placed = [_placed_by_label(graph, p) for p in range(len(graph.backward))]
    assert len(placed) == 3 and placed == [placed[0]] * 3
    tensors = [n.label for n in pass_subgraph(graph, 1).nodes if n.kind == "tensor"]
    assert len(tensors) == len(set(tensors))  # every tensor of a pass reads differently
    assert "(y_pred - y).pow(2)" in tensors  # in every pass, with no number


def test_a_view_over_its_cost_is_grouped_by_line_before_dot_runs(monkeypatch) -> None:  # noqa: ANN001
    graph = trace_code(cat_of_all_earlier(40, one_line=True))
    assert cost_of(graph) > DotLimits().max_cost
    boxes, _ = visible_boxes(graph, set())
    assert len(boxes) < 10  # the loop's line is one box
    assert_well_placed(layout_graph(graph, [], DotLimits(seconds=60)))


def test_a_view_over_its_cost_even_by_line_is_refused_without_dot(monkeypatch) -> None:  # noqa: ANN001
    graph = trace_code(cat_of_all_earlier(30, one_line=False))

    def no_dot(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("dot ran")

    monkeypatch.setattr("app.layout.run_dot", no_dot)
    with pytest.raises(LimitExceeded) as refused:
        layout_graph(graph, [], DotLimits(max_cost=500))
    assert refused.value.limit == "layout_cost"
    assert "AE_LAYOUT_MAX_COST" in refused.value.message


def test_expanding_the_loop_of_140_concatenations_stays_folded_before_dot(monkeypatch) -> None:  # noqa: ANN001
    """The five-line program that once ran dot to its time limit, twice at once starving every
    other layout: its loop opened is shown folded with a note, dot never sees it open."""
    graph = trace_code(cat_of_all_earlier(140, one_line=True))
    layout = layout_graph(graph, [], DotLimits(seconds=60))  # collapsed: the loop is one box
    assert "fold:line:5" in layout.collapsible and len(layout.nodes) <= 3
    seen: list[str] = []
    real_dot = run_dot

    def watched_dot(source: str, *args: object, **kwargs: object) -> bytes:
        seen.append(source)
        return real_dot(source, *args, **kwargs)

    monkeypatch.setattr("app.layout.run_dot", watched_dot)
    opened = layout_graph(graph, ["fold:line:5"], DotLimits(seconds=60))
    assert [m.key for m in opened.messages] == ["foldedAll"]
    assert opened.expanded == [] and len(opened.nodes) <= 3
    assert len(seen) == 1 and seen[0].count("->") <= 3
