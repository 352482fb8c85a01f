"""Chain-rule explanations: every stated product equals the gradient the engine recorded."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch
import torch.nn.functional as F

from app import chain_rule, local_rules
from app.lessons import get_lesson
from app.rule_text import RULE_MESSAGES, message_text
from app.schemas import BackwardStep, Graph, OpNode, StepRule
from app.step_view import browser_number
from app.tracing import trace_code
from tests.conftest import tensor_named
from tests.page_strings import page_strings


def steps_of(graph: Graph, grad_fn: str, pass_index: int = 0) -> list[BackwardStep]:
    found = [s for s in graph.backward[pass_index].steps if s.rule and s.rule.grad_fn == grad_fn]
    assert found, [s.rule.grad_fn for s in graph.backward[pass_index].steps if s.rule]
    return found


def rule_of(graph: Graph, grad_fn: str, pass_index: int = 0) -> StepRule:
    return steps_of(graph, grad_fn, pass_index)[0].rule


def accumulation_of(graph: Graph, name: str, pass_index: int = 0) -> StepRule:
    leaf = tensor_named(graph, name)
    (acc,) = [n for n in graph.nodes if isinstance(n, OpNode) and n.variable == leaf.id]
    (step,) = [s for s in graph.backward[pass_index].steps if s.node == acc.id]
    return step.rule


def test_issue_example_y_equals_x_w_plus_b() -> None:
    graph = trace_code(get_lesson("linear_expression").code)
    mul = rule_of(graph, "MulBackward0")
    (term,) = mul.terms
    # the product is unnamed: its box and its rule read by the expression that made it
    assert (mul.output, mul.expression) == ("(x * w)", "x * w")
    assert (term.name, term.local, term.agrees) == ("w", "x", True)
    assert term.numbers == "1 · 3 = 3"  # grad_w = 1 · 3 = 3
    add = rule_of(graph, "AddBackward0")
    assert {t.name: t.numbers for t in add.terms}["b"] == "1 · 1 = 1"
    assert accumulation_of(graph, "w").accumulate.text == "w.grad = None + 3 = 3"


def test_issue_example_shared_weight_contributions_meet_at_w() -> None:
    graph = trace_code(get_lesson("shared_weight").code)
    rule = accumulation_of(graph, "w")
    assert rule.meet is not None
    assert sorted(p.value.values[0] for p in rule.meet.parts) == [2.0, 3.0]
    assert rule.meet.total.values == [5.0]
    assert rule.meet.text in ("2 + 3 = 5", "3 + 2 = 5")
    assert rule.accumulate.added.values == [5.0] and rule.accumulate.after.values == [5.0]
    assert rule.accumulate.before is None
    mul = rule_of(graph, "MulBackward0")
    assert mul.expression == "y = a * b"
    assert {t.name: (t.local, t.numbers) for t in mul.terms} == {
        "a": ("b", "1 · 2 = 2"),
        "b": ("a", "1 · 3 = 3"),
    }
    # the parts of the meet are exactly what the two adds sent to w
    sources = {p.source for p in rule.meet.parts}
    adds = {s.node for s in steps_of(graph, "AddBackward0")}
    assert sources == adds


def test_accumulation_shows_before_and_after_across_passes() -> None:
    graph = trace_code(get_lesson("grad_accumulation").code)
    texts = [accumulation_of(graph, "w", i).accumulate.text for i in range(4)]
    assert texts == [
        "w.grad = None + 5 = 5",
        "w.grad = 5 + 5 = 10",
        "w.grad = 10 + 5 = 15",
        "w.grad = 15 + 5 = 20",
    ]


SCALAR = "import torch\nx = torch.tensor(0.5, requires_grad=True)\ns = torch.tensor(2.0, requires_grad=True)\n"

# (forward expression, grad_fn, function of the plain tensors x and s for torch to differentiate)
SCALAR_RULES = [
    ("y = x + s", "AddBackward0", lambda x, s: x + s),
    ("y = x - s", "SubBackward0", lambda x, s: x - s),
    ("y = x * s", "MulBackward0", lambda x, s: x * s),
    ("y = x / s", "DivBackward0", lambda x, s: x / s),
    ("y = -x", "NegBackward0", lambda x, s: -x),
    ("y = x ** 3", "PowBackward0", lambda x, s: x**3),
    ("y = x ** s", "PowBackward1", lambda x, s: x**s),
    ("y = torch.exp(x)", "ExpBackward0", lambda x, s: torch.exp(x)),
    ("y = torch.log(x)", "LogBackward0", lambda x, s: torch.log(x)),
    ("y = torch.sqrt(x)", "SqrtBackward0", lambda x, s: torch.sqrt(x)),
    ("y = torch.sin(x)", "SinBackward0", lambda x, s: torch.sin(x)),
    ("y = torch.cos(x)", "CosBackward0", lambda x, s: torch.cos(x)),
    ("y = torch.tanh(x)", "TanhBackward0", lambda x, s: torch.tanh(x)),
    ("y = torch.sigmoid(x)", "SigmoidBackward0", lambda x, s: torch.sigmoid(x)),
    ("y = torch.relu(x)", "ReluBackward0", lambda x, s: torch.relu(x)),
    ("y = torch.abs(x - 1)", "AbsBackward0", lambda x, s: torch.abs(x - 1)),
]


@pytest.mark.parametrize(("line", "grad_fn", "fn"), SCALAR_RULES, ids=[r[1] for r in SCALAR_RULES])
def test_scalar_rule_product_equals_torch(line: str, grad_fn: str, fn) -> None:
    """grad_out · local = result, with numbers read off the rule and checked against torch."""
    graph = trace_code(f"{SCALAR}{line}\ny.backward(torch.tensor(3.0))\n")
    assert graph.error is None
    rule = rule_of(graph, grad_fn)
    assert rule.known and rule.expression and rule.terms
    x, s = (torch.tensor(v, requires_grad=True) for v in (0.5, 2.0))
    expected = dict(
        zip(("x", "s"), torch.autograd.grad(fn(x, s) * 3, (x, s), allow_unused=True), strict=True)
    )
    for term in rule.terms:
        assert term.agrees is True, term
        shown, result = term.numbers.rsplit(" = ", 1)
        grad_out, local = shown.split(" · ", 1)
        assert float(grad_out) == 3.0
        assert float(grad_out) * float(local) == pytest.approx(float(result), rel=1e-3)
        truth = expected.get(term.name)
        if truth is not None:  # a leaf's gradient, as plain torch computes it
            assert float(result) == pytest.approx(float(truth), rel=1e-3, abs=1e-6)


TENSORS = (
    "import torch\nimport torch.nn.functional as F\n"
    "x = torch.tensor([[0.5, 2., 3.], [1.5, 0.25, 0.75]], requires_grad=True)\n"
    "s = torch.tensor(2., requires_grad=True)\n"
    "w = torch.tensor([[1., -2.], [0.5, 1.], [2., 3.]], requires_grad=True)\n"
    "v = torch.tensor([0.2, 0.7, 0.1], requires_grad=True)\n"
    "b = torch.tensor([0.1, -0.3], requires_grad=True)\n"
)
WEIGHTED = "\n(y * torch.arange(1., y.numel() + 1).reshape(y.shape)).sum().backward()\n"

TENSOR_RULES = [
    ("y = x + s", "AddBackward0"),
    ("y = x + 1", "AddBackward0"),
    ("y = x - s", "SubBackward0"),
    ("y = 1 - x", "RsubBackward1"),
    ("y = x * s", "MulBackward0"),
    ("y = x * 2", "MulBackward0"),
    ("y = x / s", "DivBackward0"),
    ("y = -x", "NegBackward0"),
    ("y = x ** 2", "PowBackward0"),
    ("y = x ** s", "PowBackward1"),
    ("y = 2 ** x", "PowBackward2"),
    ("y = x.exp()", "ExpBackward0"),
    ("y = x.log()", "LogBackward0"),
    ("y = x.sqrt()", "SqrtBackward0"),
    ("y = x.sin()", "SinBackward0"),
    ("y = x.cos()", "CosBackward0"),
    ("y = x.tanh()", "TanhBackward0"),
    ("y = x.sigmoid()", "SigmoidBackward0"),
    ("y = torch.relu(x - 1)", "ReluBackward0"),
    ("y = (x - 1).abs()", "AbsBackward0"),
    ("y = x.sum()", "SumBackward0"),
    ("y = x.sum(1)", "SumBackward1"),
    ("y = x.mean()", "MeanBackward0"),
    ("y = x.mean(0)", "MeanBackward1"),
    ("y = x @ w", "MmBackward0"),
    ("y = x.mm(w)", "MmBackward0"),
    ("y = x @ v", "MvBackward0"),
    ("y = v @ v", "DotBackward0"),
    ("y = F.linear(x, w.t(), b)", "AddmmBackward0"),
    ("lin = torch.nn.Linear(3, 2)\ny = lin(x)", "AddmmBackward0"),
    ("y = x.t()", "TBackward0"),
    ("y = x.transpose(0, 1)", "TransposeBackward0"),
    ("y = x.view(6)", "ViewBackward0"),
    ("y = x.reshape(3, 2)", "ViewBackward0"),
    ("y = s.expand(2, 3)", "ExpandBackward0"),
    ("y = x.unsqueeze(0)", "UnsqueezeBackward0"),
    ("y = x.unsqueeze(0).squeeze(0)", "SqueezeBackward1"),
    ("y = x[[0, 1], [1, 2]]", "IndexBackward0"),
    ("y = x[0]", "SelectBackward0"),
    ("y = x[:, 1:]", "SliceBackward0"),
    ("y = x.softmax(1)", "SoftmaxBackward0"),
    ("y = F.log_softmax(x, dim=1)", "LogSoftmaxBackward0"),
    ("y = F.nll_loss(F.log_softmax(x, 1), torch.tensor([0, 2]))", "NllLossBackward0"),
    ("y = F.cross_entropy(x, torch.tensor([0, 2]))", "NllLossBackward0"),
    ("y = F.mse_loss(x, torch.ones(2, 3))", "MseLossBackward0"),
    ("y = F.mse_loss(x, x.detach() * 2, reduction='sum')", "MseLossBackward0"),
    (
        "y = F.binary_cross_entropy(torch.sigmoid(x), torch.tensor([[1., 0., 1.], [0., 1., 1.]]))",
        "BinaryCrossEntropyBackward0",
    ),
]


@pytest.mark.parametrize(("line", "grad_fn"), TENSOR_RULES, ids=[r[0] for r in TENSOR_RULES])
def test_tensor_rule_recomputes_the_recorded_gradient(line: str, grad_fn: str) -> None:
    graph = trace_code(TENSORS + line + WEIGHTED)
    assert graph.error is None, graph.error
    for step in graph.backward[0].steps:
        rule = step.rule
        assert rule is not None
        if rule.grad_fn == "AccumulateGrad":
            assert rule.accumulate.added == step.grad_outputs[0]
            continue
        assert rule.known, rule.note
        wanted = [k for k, g in enumerate(step.grad_inputs) if g is not None]
        assert sorted(t.slot for t in rule.terms) == wanted
        for term in rule.terms:
            # the rule recomputed this gradient from the recorded values alone
            assert term.agrees is True, (rule.grad_fn, term)
            assert term.value is None  # sent only where it would differ from grad_inputs
            recorded = step.grad_inputs[term.slot]
            if recorded.values is not None and len(torch.tensor(recorded.values).reshape(-1)) <= 6:
                expected = torch.tensor(recorded.values).reshape(-1).tolist()
                shown = term.numbers.rsplit(" = ", 1)[1]
                shown_values = [
                    float(v) for v in shown.strip("[]").replace("[", "").replace("]", "").split(",")
                ]
                assert shown_values == pytest.approx(expected, rel=1e-3, abs=1e-4)
            # formulas hold no prose (the page typesets them token by token): words travel
            # as a message the page translates
            for formula in (term.local, term.product, term.numbers, rule.expression or ""):
                assert not PROSE.search(formula), (rule.grad_fn, formula)
            if term.message is not None:
                assert term.message.text == message_text(term.message.key, term.message.params)
    assert grad_fn in {s.rule.grad_fn for s in graph.backward[0].steps}


PROSE = re.compile(r"\b(at|the|of|in|to|each|elsewhere|target)\b")


def test_log_softmax_shows_the_whole_vector_jacobian_product() -> None:
    code = (
        "import torch\nimport torch.nn.functional as F\n"
        "x = torch.tensor([[1., 2., 0.5]], requires_grad=True)\n"
        "y = F.log_softmax(x, dim=1)\n"
        "loss = (y * torch.tensor([[1., 0., 2.]])).sum()\nloss.backward()\n"
    )
    graph = trace_code(code)
    (term,) = rule_of(graph, "LogSoftmaxBackward0").terms
    assert term.local == "I - 1·softmax(x)ᵀ"  # the Jacobian, not its diagonal 1 - softmax(x)
    assert term.product == "grad_y - softmax(x) · sum(grad_y, dim=1)"
    x = torch.tensor([[1.0, 2.0, 0.5]], requires_grad=True)
    g = torch.tensor([[1.0, 0.0, 2.0]])
    (truth,) = torch.autograd.grad(F.log_softmax(x, dim=1), x, g)
    assert torch.allclose(truth, g - F.softmax(x, 1) * g.sum(1, keepdim=True))
    assert term.agrees is True
    grad_y, rest = term.numbers.split(" - ", 1)
    softmax, rest = rest.split(" · sum(", 1)
    shown = rest.rsplit(" = ", 1)[1]
    flat = lambda text: torch.tensor(json.loads(text)).reshape(-1).tolist()  # noqa: E731
    assert flat(grad_y) == [1, 0, 2]
    assert flat(softmax) == pytest.approx(F.softmax(x, 1).detach().reshape(-1).tolist(), 1e-3)
    assert flat(shown) == pytest.approx(truth.reshape(-1).tolist(), rel=1e-3)
    assert term.message.key == "logSoftmax" and term.message.params == {"x": "x"}


def test_cross_entropy_rules_name_only_what_the_graph_draws() -> None:
    graph = trace_code(get_lesson("mlp_cross_entropy").code)
    drawn = {n.label for n in graph.nodes}
    nll = rule_of(graph, "NllLossBackward0")
    assert nll.expression == "loss = nll_loss(LogSoftmax, labels)"
    (term,) = nll.terms
    assert term.local == "-one_hot(labels)/6"
    assert term.product == "-grad_loss · one_hot(labels) / 6"
    assert term.numbers.startswith("-1 · one_hot([0, 1, 2, 0, 1, 2]) / 6 = ")
    assert term.message.key == "oneHot"
    assert term.message.params == {"target": "labels", "n": "6"}
    for rule in (nll, rule_of(graph, "LogSoftmaxBackward0")):
        names = {rule.output, *(t.name for t in rule.terms)}
        assert names <= drawn, names - drawn


def test_rule_words_are_translated_for_the_page_and_the_exports() -> None:
    strings = page_strings()
    for key, (en, zh) in RULE_MESSAGES.items():
        assert strings["en"][f"rule.{key}"] == en
        assert strings["zh"][f"rule.{key}"] == zh
        assert re.search(r"[\u4e00-\u9fff]", zh) and not re.search(r"[\u4e00-\u9fff]", en)
        # both say the same parameters
        assert set(re.findall(r"\{(\w+)\}", en)) == set(re.findall(r"\{(\w+)\}", zh))
    graph = trace_code(get_lesson("mlp_cross_entropy").code)
    (term,) = rule_of(graph, "NllLossBackward0").terms
    zh = message_text(term.message.key, term.message.params, "zh")
    assert "one_hot(labels)" in zh and "目标类别" in zh and "-1/6" in zh
    assert term.message.text == (
        "one_hot(labels) is 1 at each row's target class and 0 elsewhere: only the target's "
        "score gets a gradient, -1/6 of the loss's."
    )


def test_recorded_leaf_gradients_match_plain_torch() -> None:
    """The gradients the rules are checked against are torch's own."""
    graph = trace_code(TENSORS + "y = F.linear(x, w.t(), b).softmax(1)" + WEIGHTED)
    x = torch.tensor([[0.5, 2.0, 3.0], [1.5, 0.25, 0.75]], requires_grad=True)
    w = torch.tensor([[1.0, -2.0], [0.5, 1.0], [2.0, 3.0]], requires_grad=True)
    b = torch.tensor([0.1, -0.3], requires_grad=True)
    y = F.linear(x, w.t(), b).softmax(1)
    (y * torch.arange(1.0, 5.0).reshape(2, 2)).sum().backward()
    for name, leaf in (("x", x), ("w", w), ("b", b)):
        acc = accumulation_of(graph, name).accumulate
        assert torch.tensor(acc.after.values) == pytest.approx(leaf.grad, rel=1e-5)


def test_big_tensors_are_written_with_shapes() -> None:
    code = (
        "import torch\ntorch.manual_seed(0)\nx = torch.randn(4, 3)\n"
        "W = torch.randn(3, 5, requires_grad=True)\ny = (x @ W).sum()\ny.backward()\n"
    )
    graph = trace_code(code)
    (term,) = rule_of(graph, "MmBackward0").terms
    assert term.name == "W" and term.product == "xᵀ · grad_(x @ W)"
    assert term.numbers == "[4×3]ᵀ · [4×5] = [3×5]"
    assert term.agrees is True


def test_unknown_op_says_so_and_keeps_its_gradients() -> None:
    graph = trace_code(get_lesson("custom_function").code)
    step = steps_of(graph, "MyReLUBackward")[0]
    assert not step.rule.known and "No rule for MyReLUBackward" in step.rule.note
    assert step.rule.message.key == "unknown"
    assert step.rule.message.params == {"fn": "MyReLUBackward"}
    assert step.rule.terms == [] and step.grad_inputs[0] is not None


def test_a_wrong_rule_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """agrees compares the rule's own arithmetic with the engine: a wrong rule shows False."""
    wrong = local_rules._unary("sin", "self", "sin({x})", torch.sin)  # should be cos
    monkeypatch.setitem(local_rules.RULES, "SinBackward0", wrong)
    graph = trace_code(f"{SCALAR}y = torch.sin(x)\ny.backward()\n")
    (term,) = rule_of(graph, "SinBackward0").terms
    assert term.agrees is False
    assert term.value.values == pytest.approx(math.sin(0.5), rel=1e-6)


def test_create_graph_pass_has_rules_for_the_gradient_graph() -> None:
    graph = trace_code(get_lesson("second_derivative").code)
    first = rule_of(graph, "PowBackward0", 0)
    assert first.terms[0].local == "2·x" and first.terms[0].numbers == "1 · 6 = 6"
    second = graph.backward[1]
    assert all(s.rule is not None and s.rule.known for s in second.steps)
    scaled = rule_of(graph, "MulBackward1", 1)
    assert scaled.terms[0].local == "2" and scaled.terms[0].agrees is True


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3.0, "3"),
        (0.731059, "0.7311"),
        (-0.5, "-0.5"),
        (1e-5, "1.00e-5"),
        (123456.0, "123456"),
        (123456.7, "1.23e+5"),
        (float("nan"), "NaN"),
    ],
)
def test_numbers_print_as_the_browser_prints_them(value: float, text: str) -> None:
    assert browser_number(value) == text


def test_rules_travel_in_the_json_contract() -> None:
    graph = trace_code(get_lesson("shared_weight").code)
    again = Graph.model_validate_json(graph.model_dump_json())
    assert again.backward[0].steps[-1].rule == graph.backward[0].steps[-1].rule
    plain = Graph.model_validate(
        {
            "device": "cpu",
            "backward": [
                {"root": [], "steps": [{"node": "op0", "grad_inputs": [], "grad_outputs": []}]}
            ],
        }
    )
    assert plain.backward[0].steps[0].rule is None  # v1 graphs without rules stay valid


def test_rules_stop_at_a_bound_on_big_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chain_rule, "MAX_EXPLAINED_STEPS", 6)
    graph = trace_code(get_lesson("grad_accumulation").code)
    assert all(s.rule is not None for s in graph.backward[0].steps)
    assert all(s.rule is None for p in graph.backward[1:] for s in p.steps)
    assert any("first 6 backward steps" in note for note in graph.notes)
    assert {"key": "rulesCapped", "params": {"n": 6}} in [
        m.model_dump(include={"key", "params"}) for m in graph.messages
    ]
    assert graph.backward[3].grads  # the recording itself is complete


def _rules_json(graph: Graph) -> list[str]:
    return [s.rule.model_dump_json() for p in graph.backward for s in p.steps if s.rule]


@pytest.mark.parametrize("program", ["transformer_encoder", "mlp_cross_entropy"])
def test_rules_made_once_per_key_equal_rules_made_for_every_step(program, monkeypatch) -> None:
    code = get_lesson(program).code
    indexes: list[chain_rule._RuleNames] = []
    real_init = chain_rule._RuleNames.__init__

    def init(self: chain_rule._RuleNames, graph: Graph) -> None:
        real_init(self, graph)
        indexes.append(self)

    monkeypatch.setattr(chain_rule._RuleNames, "__init__", init)
    made = trace_code(code)
    (index,) = indexes
    keyed = [
        step
        for record in made.backward
        for step in record.steps
        if index.nodes[step.node].grad_fn != "AccumulateGrad"
        and chain_rule._rule_key(index, index.nodes[step.node], step) is not None
    ]
    assert 0 < len(index.rules_made) < len(keyed)  # some rules were made once and used again
    monkeypatch.setattr(chain_rule, "_rule_key", lambda *args: None)  # every rule made anew
    each = trace_code(code)
    assert not indexes[1].rules_made
    assert _rules_json(made) == _rules_json(each)


def test_layers_of_one_shape_share_their_shape_rules_but_not_small_values() -> None:
    from benchmarks.models import encoder

    torch.manual_seed(0)
    model = encoder(6)
    loss = model(torch.randn(2, 8, 32)).pow(2).mean()
    from app.recorder import trace_tensors

    graph = trace_tensors(loss, names={"model": model})
    index = chain_rule._RuleNames(graph)
    (record,) = graph.backward
    nodes = {n.id: n for n in graph.nodes}
    keys = []
    for step in record.steps:
        op = nodes[step.node]
        keys.append(chain_rule._rule_key(index, op, step))
    shared = [k for k in keys if k is not None]
    assert len(set(shared)) < len(shared) / 3  # six layers: most steps repeat another's rule
    small = [
        s
        for s in record.steps
        if any(d is not None and d.values is not None for d in s.grad_inputs + s.grad_outputs)
    ]
    assert small  # the loss's scalar steps carry values: they are never shared
    for step in small:
        assert keys[record.steps.index(step)] is None


_ONE_NUMBER_PROGRAMS = {
    "chain": "import torch\nx = torch.tensor([2.0], requires_grad=True)\ny = x\n"
    "for _ in range(6):\n    y = y * 1.5\ny.sum().backward()\n",
    "neuron": "import torch\nx1 = torch.tensor(2.0)\nw1 = torch.tensor(-3.0, requires_grad=True)\n"
    "x2 = torch.tensor(0.0)\nw2 = torch.tensor(1.0, requires_grad=True)\n"
    "b = torch.tensor(6.8813735870195432, requires_grad=True)\n"
    "n = x1 * w1 + x2 * w2 + b\no = torch.tanh(n)\no.backward()\n",
    # a 0-dimensional gradient times a [1] operand: broadcasting sums, the tensors decide
    "broadcast": "import torch\na = torch.tensor(3.0, requires_grad=True)\n"
    "c = torch.tensor([2.0], requires_grad=True)\n(a * c).sum().backward()\n",
    "non_finite": "import torch\na = torch.tensor(float('inf'), requires_grad=True)\n"
    "b = torch.tensor(0.0, requires_grad=True)\n(a * b - b * 2).backward()\n",
    "unary": "import torch\nx = torch.tensor(0.3, requires_grad=True)\n"
    "v = torch.tensor([-0.7], requires_grad=True)\n"
    "y = torch.tanh(x) * torch.sigmoid(x) + torch.exp(x) * torch.relu(v) + torch.relu(x)\n"
    "(y.sum() + torch.sigmoid(v).sum() + torch.tanh(v * 3.0).sum()).backward()\n",
    # the product is NaN; the gradient of b is made to disagree with the rule below
    "disagrees": "import torch\na = torch.tensor(float('inf'), requires_grad=True)\n"
    "b = torch.tensor(5.0, requires_grad=True)\nc = a * b\n(c * 0.0).backward()\n",
}


def _rules_made_again(graph: Graph) -> list[str]:
    graph = graph.model_copy(deep=True)
    for record in graph.backward:
        for step in record.steps:
            step.__dict__["rule"] = None
    return _rules_json(chain_rule.attach_rules(graph))


@pytest.mark.parametrize("program", sorted(_ONE_NUMBER_PROGRAMS))
def test_rules_of_one_number_computed_with_floats_equal_those_computed_with_tensors(
    program, monkeypatch
) -> None:
    from app import step_view

    graph = trace_code(_ONE_NUMBER_PROGRAMS[program])
    if program == "disagrees":
        first_mul = steps_of(graph, "MulBackward0")[-1]
        first_mul.grad_inputs[1].values = 12.5  # not what the rule computes
    with_floats = _rules_made_again(graph)
    monkeypatch.setattr(step_view, "one_float", lambda data: None)  # every value a tensor
    with_tensors = _rules_made_again(graph)
    assert with_floats == with_tensors
    if program == "disagrees":
        assert '"agrees":false' in "".join(with_floats)
    assert with_floats


def test_a_step_of_one_number_times_another_makes_no_tensor(monkeypatch) -> None:
    from app import step_view

    made: list[object] = []
    real = step_view.ValueCache.tensor

    def tensor(self, data):  # noqa: ANN001, ANN202
        made.append(data)
        return real(self, data)

    monkeypatch.setattr(step_view.ValueCache, "tensor", tensor)
    graph = trace_code(_ONE_NUMBER_PROGRAMS["chain"])
    muls = steps_of(graph, "MulBackward0")
    assert len(muls) == 6
    assert all(t.agrees for s in muls for t in s.rule.terms)
    assert [t.numbers for t in muls[0].rule.terms] == ["1 · 1.5 = 1.5"]
    # the gradients the sum sent and the leaf received are made tensors by those steps' rules
    others = [s for s in graph.backward[0].steps if s not in muls]
    other_data = {id(d) for s in others for d in s.grad_inputs + s.grad_outputs if d is not None}
    mul_data = {id(d) for s in muls for d in s.grad_inputs + s.grad_outputs if d is not None}
    assert len(mul_data - other_data) == 5
    assert not (mul_data - other_data) & {id(d) for d in made}
