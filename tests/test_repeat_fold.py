"""Folds of repeats: LSTMCell × 50 and a 48-layer encoder fold to one box and open fully."""

from __future__ import annotations

import re

import pytest
import torch
from pydantic import ValidationError

from app import layout as layout_module
from app.dot_source import cluster_name
from app.errors import LimitExceeded
from app.layout import layout_graph
from app.layout_groups import collapsible_groups, node_groups, resolve_expanded
from app.layout_view import FOLDED_NOTES
from app.repeat_fold import MIN_REPEATS, Folds, find_folds, fold_groups
from app.schemas import Graph, Layout, LayoutRequest, TensorNode
from app.tracing import trace_code
from tests.page_strings import page_strings

LSTM_STEPS = 50
LSTM_PROGRAM = f"""import torch
import torch.nn as nn
torch.manual_seed(0)
cell = nn.LSTMCell(4, 3)
x = torch.randn({LSTM_STEPS}, 2, 4)
h = torch.zeros(2, 3)
c = torch.zeros(2, 3)
for t in range({LSTM_STEPS}):
    h, c = cell(x[t], (h, c))
loss = h.pow(2).sum()
loss.backward()
"""
LSTM_LINE = 9  # the line of `cell(...)` above

ENCODER_PROGRAM = """import torch
import torch.nn as nn
torch.manual_seed(0)
layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True)
encoder = nn.TransformerEncoder(layer, num_layers=48, enable_nested_tensor=False)
x = torch.randn(1, 3, 8)
loss = encoder(x).pow(2).mean()
loss.backward()
"""


@pytest.fixture(scope="module")
def lstm() -> Graph:
    graph = trace_code(LSTM_PROGRAM)
    assert graph.error is None, graph.error
    return graph


@pytest.fixture(scope="module")
def encoder48() -> Graph:
    graph = trace_code(ENCODER_PROGRAM)
    assert graph.error is None, graph.error
    return graph


def torch_grads(program: str, names: list[str]) -> dict[str, torch.Tensor]:
    """The .grad of the program's parameters as plain torch leaves them."""
    scope: dict[str, object] = {}
    exec(compile(program, "<program>", "exec"), scope)  # noqa: S102 - the test's own program
    found: dict[str, torch.Tensor] = {}
    for name in names:
        owner, attribute = name.split(".", 1)
        found[name] = dict(scope[owner].named_parameters())[attribute].grad  # type: ignore[attr-defined]
    return found


def recorded_grad(graph: Graph, name: str) -> torch.Tensor:
    (node,) = [n for n in graph.nodes if isinstance(n, TensorNode) and n.name == name]
    data = graph.backward[-1].grads[node.id]
    assert data.values is not None
    return torch.tensor(data.values)


def shown_edges(graph: Graph, layout: Layout) -> set[str]:
    return {member for edge in layout.edges for member in edge.members}


def test_lstm_cell_loop_shows_one_box_of_50(lstm: Graph) -> None:
    layout = layout_graph(lstm)
    folds = [n for n in layout.nodes if n.kind == "fold"]
    assert [n.label for n in folds] == [f"line {LSTM_LINE} × {LSTM_STEPS}"]
    fold = folds[0].id
    assert fold == f"group:fold:line:{LSTM_LINE}"
    # every step of the loop plays on the folded box: the player highlights it at each one
    loop_steps = [s for s in lstm.forward if s.line == LSTM_LINE]
    assert len(loop_steps) == LSTM_STEPS
    assert {layout.node_of[s.node] for s in loop_steps} == {fold}
    assert {layout.node_of[s.node] for s in lstm.backward[0].steps if s.node in folds[0].members}
    assert f"fold:line:{LSTM_LINE}" in layout.collapsible


def test_the_lstm_fold_opens_into_its_50_iterations(lstm: Graph) -> None:
    layout = layout_graph(lstm, [f"fold:line:{LSTM_LINE}"])
    iterations = [n for n in layout.nodes if n.kind == "line" and "#" in (n.module or "")]
    assert len(iterations) == LSTM_STEPS
    assert [c.title for c in layout.clusters] == [f"line {LSTM_LINE} × {LSTM_STEPS}"]
    assert layout.messages == []


def test_the_lstm_expands_fully_with_every_edge_drawn(lstm: Graph) -> None:
    before = lstm.model_dump_json()
    layout = layout_graph(lstm, ["*"])
    assert layout.messages == []  # nothing folded back: all 50 iterations open
    assert all(layout.node_of[n.id] == n.id for n in lstm.nodes)  # every node its own box
    assert len(layout.nodes) == len(lstm.nodes)
    assert shown_edges(lstm, layout) == {e.id for e in lstm.edges}
    assert all(edge.path.startswith("M") for edge in layout.edges)
    titles = {c.title for c in layout.clusters}  # the fold's frame and one per iteration
    assert f"line {LSTM_LINE} × {LSTM_STEPS}" in titles
    iterations = sorted((c for c in layout.clusters if "#" in (c.title or "")), key=lambda c: c.y)
    # the iterations stack top to bottom, in the order they ran
    assert [c.title for c in iterations] == [f"line {LSTM_LINE}#{i}" for i in range(1, 51)]
    assert all(a.y + a.height <= b.y for a, b in zip(iterations, iterations[1:], strict=False))
    assert lstm.model_dump_json() == before  # folding is a view: the recording is untouched


def test_gradients_of_the_folded_lstm_are_torchs(lstm: Graph) -> None:
    names = ["cell.weight_ih", "cell.weight_hh", "cell.bias_ih", "cell.bias_hh"]
    expected = torch_grads(LSTM_PROGRAM, names)
    layout_graph(lstm, ["*"])
    for name in names:
        torch.testing.assert_close(recorded_grad(lstm, name), expected[name])


def test_a_48_layer_encoder_folds_to_one_box(encoder48: Graph) -> None:
    layout = layout_graph(encoder48, ["layers"])
    assert [n.label for n in layout.nodes if n.kind == "fold"] == [
        "encoder.layers × 48 · TransformerEncoderLayer"
    ]
    assert layout.folds == {"fold:layers.0": [f"layers.{i}" for i in range(48)]}
    opened = layout_graph(encoder48, ["layers", "fold:layers.0"])
    layers = [n for n in opened.nodes if n.kind == "module"]
    assert [n.module for n in layers] == [f"layers.{i}" for i in range(48)]


def test_a_48_layer_encoder_expands_all_without_being_refused(encoder48: Graph) -> None:
    layout = layout_graph(encoder48, ["*"])
    (note,) = layout.messages
    assert note.key == "foldedLater"
    opened_layers = note.params["open"]
    assert isinstance(opened_layers, int) and 1 <= opened_layers < 48
    assert "fold:layers.0" in layout.expanded
    # the first layers open down to their ops, the others closed boxes, none refused
    assert {f"layers.{i}" for i in range(opened_layers)} <= set(layout.expanded)
    assert f"layers.{opened_layers}" not in layout.expanded
    boxes = {n.id for n in layout.nodes}
    assert {f"group:layers.{i}" for i in range(opened_layers, 48)} <= boxes
    names = ["encoder.layers.0.linear1.bias", "encoder.layers.47.norm2.bias"]
    expected = torch_grads(ENCODER_PROGRAM, names)
    for name in names:
        torch.testing.assert_close(recorded_grad(encoder48, name), expected[name])


def test_depth_opens_a_level_per_click(encoder48: Graph) -> None:
    groups, folds = fold_groups(encoder48, node_groups(encoder48))
    every = collapsible_groups(groups, folds)
    assert resolve_expanded({"depth:1"}, every, folds) == {"layers"}
    assert resolve_expanded({"depth:2"}, every, folds) == {"layers", "fold:layers.0"}
    third = resolve_expanded({"depth:3"}, every, folds)
    assert {f"layers.{i}" for i in range(48)} <= third and "layers.0.linear1" not in third
    assert resolve_expanded({"*"}, every, folds) == set(every)
    layout = layout_graph(encoder48, ["depth:2"])
    assert len([n for n in layout.nodes if n.kind == "module"]) == 48


def test_only_runs_of_one_structure_fold(encoder48: Graph) -> None:
    groups = node_groups(encoder48)
    folds = find_folds(encoder48, groups)
    assert list(folds.members) == ["fold:layers.0"]
    # a layer of another structure in the middle cuts the run in two
    modules = dict(encoder48.modules)
    modules["layers.20"] = "Something(else)"
    other = encoder48.model_copy(update={"modules": modules})
    cut = find_folds(other, groups)
    assert {f: len(m) for f, m in cut.members.items()} == {
        "fold:layers.0": 20,
        "fold:layers.21": 27,
    }


def test_two_calls_and_small_repeats_stay_apart() -> None:
    two = trace_code(LSTM_PROGRAM.replace(f"range({LSTM_STEPS})", "range(2)"))
    assert not [n for n in layout_graph(two).nodes if n.kind == "fold"]
    assert MIN_REPEATS == 3
    lesson = trace_code(
        "import torch\nimport torch.nn as nn\nlin = nn.Linear(2, 2)\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.fc = nn.Linear(2, 2)\n"
        "    def forward(self, x):\n        for _ in range(3):\n            x = self.fc(x)\n"
        "        return x\n"
        "net = Net()\nnet(torch.ones(1, 2)).sum().backward()\n"
    )
    groups, folds = fold_groups(lesson, node_groups(lesson))
    assert {"fc", "fc#2", "fc#3"} <= set(groups.values())
    assert folds == Folds()  # three calls of one small layer: its shared weight is the lesson


def test_layout_request_takes_all_and_a_depth() -> None:
    request = LayoutRequest(code="x = 1", expanded=["*"], depth=2)
    assert request.view_expanded() == ["*", "depth:2"]
    for bad in ({"expanded": ["depth:2"]}, {"expanded": ["lay*"]}, {"depth": -1}, {"depth": 65}):
        with pytest.raises(ValidationError):
            LayoutRequest(code="x = 1", **bad)


def test_a_fold_dot_cannot_lay_out_in_time_is_shown_closed(lstm: Graph, monkeypatch) -> None:  # noqa: ANN001
    real_dot = layout_module.run_dot
    frame = cluster_name(f"fold:line:{LSTM_LINE}")

    def slow_when_open(source: str, *args: object, **kwargs: object) -> bytes:
        if frame in source:  # the fold open: as if dot ran out of time
            raise LimitExceeded("layout_time", "graphviz took longer than 30 s")
        return real_dot(source, *args, **kwargs)

    monkeypatch.setattr(layout_module, "run_dot", slow_when_open)
    layout = layout_graph(lstm, [f"fold:line:{LSTM_LINE}", f"line:{LSTM_LINE}#2"])
    assert [m.key for m in layout.messages] == ["foldedAll"]
    assert layout.expanded == []
    assert [n.label for n in layout.nodes if n.kind == "fold"] == [f"line {LSTM_LINE} × 50"]


def test_every_fold_note_speaks_english_and_chinese() -> None:
    strings = page_strings()
    for key, text in FOLDED_NOTES.items():
        entries = [strings[lang][f"note.{key}"] for lang in ("en", "zh")]
        params = set(re.findall(r"\{(\w+)\}", text))
        assert all(set(re.findall(r"\{(\w+)\}", entry)) == params for entry in entries)


def test_a_loop_body_of_two_lines_folds_once_and_separate_loops_apart() -> None:
    graph = trace_code(
        "import torch\nx = torch.ones(2, requires_grad=True)\ny = x\n"
        "for i in range(200):\n    y = y * 1.01\n    y = y + 0.5\n"
        "z = y\nfor i in range(100):\n    z = z * 2\nz.sum().backward()\n"
    )
    groups, folds = fold_groups(graph, node_groups(graph))
    assert {f: len(m) for f, m in folds.members.items()} == {
        "fold:line:5-6": 200,
        "fold:line:9": 100,
    }
    by_id = {n.id: n for n in graph.nodes}
    first = [n for n, g in groups.items() if g == "line:5-6#1" and by_id[n].kind == "op"]
    calls = [by_id[n] for n in first if by_id[n].variable is None]  # not x's AccumulateGrad
    assert sorted(op.line for op in calls) == [5, 6]  # one iteration: both lines
    layout = layout_graph(graph, ["*"])
    assert layout.messages == [] and len(layout.nodes) == len(graph.nodes)


def test_names_that_fold_nothing_are_no_error(encoder48: Graph) -> None:
    junk = ["fold:nothing", "fold:", "line:9#999", "layers.99", "depth:x"]
    assert Folds().lineage("fold:nothing") == ["fold:nothing"]
    layout = layout_graph(encoder48, ["layers", *junk])
    assert [n.kind for n in layout.nodes if n.kind == "fold"] == ["fold"]
    every = layout.collapsible  # every group by name, not '*': the junk reaches the folding
    folded_back = layout_graph(encoder48, [*every, *junk])
    assert [m.key for m in folded_back.messages] == ["foldedLater"]
