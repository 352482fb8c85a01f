"""Every gallery program: recorded gradients equal those plain torch computes."""

from __future__ import annotations

import pytest
import torch

from app.examples import all_examples, get_example, summaries
from app.schemas import TensorNode
from app.tracing import trace_code
from tests.ground_truth import resolve, run_plain

EXAMPLES = [e.id for e in all_examples()]


def test_gallery_has_every_lesson() -> None:
    ids = set(EXAMPLES)
    assert len(ids) >= 12
    for needed in [
        "linear_expression",
        "shared_weight",
        "retain_grad",
        "second_derivative",
        "grad_accumulation",
        "inplace_leaf_error",
        "linear_regression",
        "logistic_regression",
        "two_layer_relu",
        "custom_function",
        "dynamic_net",
        "mlp_cross_entropy",
    ]:
        assert needed in ids
    for summary in summaries():
        assert summary.title_en and summary.title_zh and summary.lesson
        assert any("\u4e00" <= ch <= "\u9fff" for ch in summary.title_zh)


@pytest.mark.parametrize("example_id", EXAMPLES)
def test_recorded_grads_match_plain_torch(example_id: str) -> None:
    code = get_example(example_id).code
    graph = trace_code(code)
    names = sorted(
        {n.name for n in graph.nodes if isinstance(n, TensorNode) and n.is_leaf and n.name}
    )
    truth = run_plain(code, names)
    recorded = [p for p in graph.backward if not p.added]
    assert len(recorded) == min(len(truth), 8)
    compared = 0
    for record, expected in zip(recorded, truth, strict=False):
        by_name = {
            n.name: n.id
            for n in graph.nodes
            if isinstance(n, TensorNode) and n.name in expected["grads"]
        }
        for name, values in expected["grads"].items():
            if name not in by_name:
                continue
            got = record.grads.get(by_name[name])
            assert got is not None, f"pass has no .grad for {name}"
            if got.values is not None:
                assert torch.allclose(torch.tensor(got.values), torch.tensor(values), atol=1e-6)
            else:
                full = torch.tensor(values)
                assert got.stats.mean == pytest.approx(float(full.mean()), rel=1e-4, abs=1e-6)
            compared += 1
        if expected["results"] is not None:
            results = list(record.results.values())
            for got, values in zip(results, expected["results"], strict=True):
                assert torch.allclose(torch.tensor(got.values), torch.tensor(values))
                compared += 1
    if graph.error is None and graph.backward and not graph.backward[0].added:
        assert compared > 0


def test_implicit_backward_matches_plain_torch() -> None:
    code = get_example("implicit_backward").code
    graph = trace_code(code)
    (record,) = graph.backward
    assert record.added and graph.notes
    namespace = run_plain(code, [], add_backward=True)[0]["namespace"]
    namespace["out"].backward()
    for name in ("w", "b"):
        node = next(n for n in graph.nodes if isinstance(n, TensorNode) and n.name == name)
        expected = resolve(namespace, name).grad
        assert torch.allclose(torch.tensor(record.grads[node.id].values), expected)


NARRATED = [
    "linear_expression",
    "shared_weight",
    "retain_grad",
    "second_derivative",
    "grad_accumulation",
    "inplace_leaf_error",
]


@pytest.mark.parametrize("example_id", NARRATED)
def test_narration_names_real_steps_in_both_languages(example_id: str) -> None:
    example = get_example(example_id)
    assert len(example.captions) >= 2
    graph = trace_code(example.code)
    positions = {f"forward:{i}" for i in range(len(graph.forward))}
    for p, record in enumerate(graph.backward):
        positions |= {f"backward:{p}:{i}" for i in range(len(record.steps))}
    assert set(example.captions) <= positions
    for caption in example.captions.values():
        assert caption.en and any("\u4e00" <= ch <= "\u9fff" for ch in caption.zh)


def test_narration_teaches_the_seed_lessons() -> None:
    text = {e: " ".join(c.en for c in get_example(e).captions.values()) for e in NARRATED}
    assert "x.grad stays None" in text["linear_expression"]
    assert "retain_grad()" in text["retain_grad"] and "b.grad stays None" in text["retain_grad"]
    assert "2 + 3 = 5" in text["shared_weight"]
    assert "5 + 5 = 10" in text["grad_accumulation"]
    assert "create_graph=True" in text["second_derivative"]
    assert "in place" in text["inplace_leaf_error"]
    assert "is_leaf" in text["shared_weight"] + text["retain_grad"]
