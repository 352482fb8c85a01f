"""Every gallery program: recorded gradients equal those plain torch computes."""

from __future__ import annotations

import pytest
import torch

from app.lessons import all_lessons, get_lesson, summaries
from app.schemas import Graph, TensorData, TensorNode
from app.tracing import trace_code
from tests.conftest import tensor_named
from tests.ground_truth import resolve, run_plain

EXAMPLES = [e.id for e in all_lessons()]


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
        assert summary.title_en and summary.title_zh and summary.lesson and summary.lesson_zh
        assert any("\u4e00" <= ch <= "\u9fff" for ch in summary.title_zh)


@pytest.mark.parametrize("example_id", EXAMPLES)
def test_recorded_grads_match_plain_torch(example_id: str) -> None:
    code = get_lesson(example_id).code
    graph = trace_code(code)
    names = sorted(
        {n.name for n in graph.nodes if isinstance(n, TensorNode) and n.is_leaf and n.name}
    )
    truth = run_plain(code, names)
    recorded = [p for p in graph.backward if not p.added]
    pairs = list(zip(recorded, truth[:8], strict=False))
    if any(m.key == "passesSummarisedLastFull" for m in graph.messages):
        pairs.append((recorded[8], truth[-1]))  # a range loop's last pass, recorded in full
    assert len(recorded) == len(pairs) == min(len(truth), 8) + (len(pairs) > 8)
    compared = 0
    for record, expected in pairs:
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
    code = get_lesson("implicit_backward").code
    graph = trace_code(code)
    (record,) = graph.backward
    assert record.added and graph.notes
    namespace = run_plain(code, [], add_backward=True)[0]["namespace"]
    namespace["out"].backward()
    for name in ("w", "b"):
        node = next(n for n in graph.nodes if isinstance(n, TensorNode) and n.name == name)
        expected = resolve(namespace, name).grad
        assert torch.allclose(torch.tensor(record.grads[node.id].values), expected)


def _leaf_grads(graph: Graph) -> list[dict[str, list[TensorData]]]:
    """Per pass: the .grad of each leaf, by label, in the order the leaves were recorded."""
    labels = {
        n.id: n.label
        for n in graph.nodes
        if isinstance(n, TensorNode) and n.is_leaf and n.requires_grad
    }
    passes = []
    for record in graph.backward:
        grads: dict[str, list[TensorData]] = {}
        for tensor_id, data in record.grads.items():
            grads.setdefault(labels.get(tensor_id, tensor_id), []).append(data)
        passes.append(grads)
    return passes


def _same_data(cpu: TensorData, gpu: TensorData) -> None:
    assert cpu.shape == gpu.shape and cpu.dtype == gpu.dtype
    if cpu.stats is None or gpu.stats is None:
        assert cpu.stats is gpu.stats is None
        return
    if cpu.values is not None:
        expected = torch.tensor(cpu.values, dtype=torch.float64)
        assert torch.allclose(torch.tensor(gpu.values, dtype=torch.float64), expected, atol=1e-5)
    for field in ("min", "max", "mean", "std"):
        got, want = getattr(gpu.stats, field), getattr(cpu.stats, field)
        assert got == pytest.approx(want, rel=1e-3, abs=1e-5), field


@pytest.mark.cuda
@pytest.mark.parametrize("example_id", EXAMPLES)
def test_every_example_on_cuda_has_the_cpu_gradients(example_id: str) -> None:
    code = get_lesson(example_id).code
    cpu = trace_code(code, device="cpu")
    gpu = trace_code(code, device="cuda")
    assert gpu.device == "cuda:0"
    tensors = [n for n in gpu.nodes if isinstance(n, TensorNode)]
    assert tensors and all(n.device == "cuda:0" for n in tensors)  # created there, no .to()
    assert (gpu.error.type if gpu.error else None) == (cpu.error.type if cpu.error else None)
    assert len(gpu.backward) == len(cpu.backward)
    for cpu_pass, gpu_pass in zip(_leaf_grads(cpu), _leaf_grads(gpu), strict=True):
        assert gpu_pass.keys() == cpu_pass.keys()
        for label, datas in cpu_pass.items():
            assert len(gpu_pass[label]) == len(datas), label
            for want, got in zip(datas, gpu_pass[label], strict=True):
                _same_data(want, got)
    for name in {n.name for n in tensors if n.name}:
        _same_data(tensor_named(cpu, name).value, tensor_named(gpu, name).value)


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
    example = get_lesson(example_id)
    assert len(example.captions) >= 2
    graph = trace_code(example.code)
    positions = {f"forward:{i}" for i in range(len(graph.forward))}
    for p, record in enumerate(graph.backward):
        positions |= {f"backward:{p}:{i}" for i in range(len(record.steps))}
    assert set(example.captions) <= positions
    for caption in example.captions.values():
        assert caption.en and any("\u4e00" <= ch <= "\u9fff" for ch in caption.zh)


def test_narration_teaches_the_seed_lessons() -> None:
    text = {e: " ".join(c.en for c in get_lesson(e).captions.values()) for e in NARRATED}
    assert "x.grad stays None" in text["linear_expression"]
    assert "retain_grad()" in text["retain_grad"] and "b.grad stays None" in text["retain_grad"]
    assert "2 + 3 = 5" in text["shared_weight"]
    assert "5 + 5 = 10" in text["grad_accumulation"]
    assert "create_graph=True" in text["second_derivative"]
    assert "in place" in text["inplace_leaf_error"]
    assert "is_leaf" in text["shared_weight"] + text["retain_grad"]
