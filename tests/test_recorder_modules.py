"""Module boxes: one per call of a module, by path, named after the variable holding the model."""

from __future__ import annotations

from app.lessons import get_lesson
from app.schemas import OpNode, TensorNode
from app.tracing import trace_code
from tests.conftest import node_by_id, tensor_named


def test_modules_group_ops_and_name_parameters() -> None:
    graph = trace_code(get_lesson("mlp_cross_entropy").code)
    modules = {n.module for n in graph.nodes if isinstance(n, OpNode) and n.module}
    assert {"fc1", "fc2"} <= modules
    params = {n.name for n in graph.nodes if isinstance(n, TensorNode) and n.is_parameter}
    assert {"net.fc1.weight", "net.fc1.bias", "net.fc2.weight", "net.fc2.bias"} <= params
    ce = [s for s in graph.forward if s.call == "cross_entropy"]
    assert ce and len(ce[0].nodes) >= 2
    kinds = {node_by_id(graph, n).grad_fn for n in ce[0].nodes}
    assert {"NllLossBackward0", "LogSoftmaxBackward0"} <= kinds
    linear = next(s for s in graph.forward if s.call == "linear" and s.module == "fc1")
    assert len(linear.nodes) == 2  # AddmmBackward0 + TBackward0 under one call


def test_module_classes_are_recorded_by_path() -> None:
    graph = trace_code(get_lesson("mlp_cross_entropy").code)
    assert graph.modules["fc1"].startswith("Linear(")
    assert "→" in graph.modules["fc1"]


def test_each_call_of_a_reused_module_gets_its_own_box() -> None:
    graph = trace_code(get_lesson("dynamic_net").code)
    second = [n for n in graph.nodes if isinstance(n, OpNode) and n.call is not None]
    paths = {n.module for n in second if n.module}
    assert {"middle_linear", "middle_linear#2", "middle_linear#3"} <= paths
    assert graph.modules["middle_linear#3"] == graph.modules["middle_linear"]
    # the shared weight is one tensor node that feeds every call
    weight = tensor_named(graph, "model.middle_linear.weight")
    users = {node_by_id(graph, e.target).module for e in graph.edges if e.source == weight.id}
    assert {"middle_linear", "middle_linear#2", "middle_linear#3"} <= users


def test_sub_modules_of_a_repeated_call_live_in_that_call() -> None:
    code = (
        "import torch\nimport torch.nn as nn\n"
        "class Block(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(3, 3)\n"
        "    def forward(self, x):\n"
        "        return torch.tanh(self.fc(x))\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.block = Block()\n"
        "    def forward(self, x):\n"
        "        return self.block(self.block(x))\n"
        "net = Net()\n"
        "for step in range(2):\n"
        "    net(torch.ones(1, 3)).sum().backward()\n"
    )
    graph = trace_code(code)
    paths = {n.module for n in graph.nodes if isinstance(n, OpNode) and n.module}
    assert paths == {"block", "block.fc", "block#2", "block#2.fc"}  # counted per outer call


def test_module_boxes_carry_the_path_of_the_variable_holding_the_model() -> None:
    code = (
        "import torch\nfrom torch import nn\n"
        "class Block(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(2, 2)\n"
        "    def forward(self, x):\n"
        "        return self.fc(x).relu()\n"
        "model = nn.Sequential(Block(), nn.Linear(2, 1))\n"
        "model(torch.ones(1, 2)).sum().backward()\n"
    )
    graph = trace_code(code)
    assert graph.module_paths == {"0": "model.0", "0.fc": "model.0.fc", "1": "model.1"}
    params = {n.name for n in graph.nodes if isinstance(n, TensorNode) and n.is_parameter}
    for path in graph.module_paths.values():  # a box's path is its parameters' prefix
        assert any(p.startswith(path + ".") for p in params), path
