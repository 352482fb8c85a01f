"""TensorData: inline values, statistics, previews, odd dtypes."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from app import tensor_summary
from app.schemas import TensorData
from app.tensor_summary import SummaryBatch, batch_stats, summarize
from app.tensor_summary_blocks import BLOCK_ELEMENTS
from app.value_sample import HISTOGRAM_SAMPLE
from tests.big_tensors import big_tensors


def test_small_tensor_inline_with_exact_stats() -> None:
    data = summarize(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), inline_limit=8)
    assert data.values == [[1.0, 2.0], [3.0, 4.0]] and data.shape == [2, 2]
    assert (data.stats.min, data.stats.max, data.stats.mean) == (1.0, 4.0, 2.5)
    assert data.stats.std == pytest.approx(torch.tensor([1.0, 2, 3, 4]).std(correction=0).item())


def test_large_tensor_has_stats_heatmap_histogram() -> None:
    torch.manual_seed(0)
    t = torch.randn(100, 40)
    data = summarize(t, inline_limit=64)
    assert data.values is None
    assert data.stats.mean == pytest.approx(t.mean().item(), rel=1e-5)
    assert len(data.heatmap) == 16 and len(data.heatmap[0]) == 16
    assert sum(data.histogram.counts) == t.numel() and len(data.histogram.edges) == 17
    assert summarize(t, 64, preview=False).heatmap is None


@pytest.mark.parametrize(
    "tensor",
    [
        torch.tensor([1, 2, 3]),
        torch.tensor([True, False]),
        torch.zeros(0, 3),
        torch.tensor([1.0 + 2j]),
        torch.ones(3, dtype=torch.float16),
    ],
)
def test_other_dtypes(tensor: torch.Tensor) -> None:
    data = summarize(tensor, inline_limit=8)
    assert data.shape == list(tensor.shape) and data.dtype == str(tensor.dtype).removeprefix(
        "torch."
    )
    assert TensorData.model_validate_json(data.model_dump_json()) == data


def test_non_finite_values_travel_as_strings() -> None:
    data = summarize(torch.tensor([1.0, float("nan"), float("inf")]), inline_limit=8)
    payload = json.loads(data.model_dump_json())
    assert payload["values"] == [1.0, "NaN", "Infinity"]
    big = summarize(torch.tensor([float("inf")] + [1.0] * 100), inline_limit=8)
    assert sum(big.histogram.counts) == 100


def _mixed_tensors() -> list[torch.Tensor]:
    torch.manual_seed(0)
    return [
        torch.randn(8, 32),
        torch.randn(8, 32) * 1e3 + 5,  # same size: stacked with the first
        torch.randn(256),  # same size, another shape
        torch.randn(3, 5, 7).double(),
        torch.randn(40, 20).half(),
        torch.randint(-5, 9, (70,)),
        torch.rand(90) > 0.5,
        torch.randn(66, dtype=torch.complex64),
        torch.full((100,), 3.5),
        torch.tensor([1.0, float("nan"), 2.0] * 30),
        torch.tensor([1.0, float("inf"), -2.0] * 30),
        torch.randn(1),
        torch.randn(20, 30).t(),  # not contiguous
    ]


def test_batch_stats_equal_per_tensor_stats() -> None:
    tensors = _mixed_tensors()
    for t, stats in zip(tensors, batch_stats(tensors), strict=True):
        x = t.abs() if t.is_complex() else t
        x = x.double()
        low, high = torch.aminmax(x)
        std = torch.std(x, correction=0)  # (std_mean's Welford mean is NaN where the mean is ±inf)
        expected = [v.item() for v in (low, high, x.mean(), std)]
        got = [stats.min, stats.max, stats.mean, stats.std]
        assert got == pytest.approx(expected, rel=2e-6, abs=1e-9, nan_ok=True), t.dtype


def test_summary_batch_fills_the_same_data_as_summarize_on_flush() -> None:
    tensors = _mixed_tensors()
    batch = SummaryBatch(inline_limit=64)
    pending = [batch.add(t, preview=i % 2 == 0) for i, t in enumerate(tensors)]
    assert len(batch) == len(tensors) and all(d.stats is None for d in pending)
    batch.flush()
    assert len(batch) == 0
    for i, (t, data) in enumerate(zip(tensors, pending, strict=True)):
        alone = summarize(t, inline_limit=64, preview=i % 2 == 0)
        assert data.model_dump_json() == alone.model_dump_json()
        assert data.stats is not None


def test_summary_batch_flushes_itself_past_its_element_bound() -> None:
    batch = SummaryBatch(inline_limit=8, max_pending_elements=1000)
    first = batch.add(torch.ones(200))
    for _ in range(3):
        batch.add(torch.ones(200))
    assert first.stats is None and len(batch) == 4
    shared = torch.arange(150.0)
    for view in (shared, shared.view(10, 15), shared.view(15, 10).t(), shared):
        batch.add(view)  # one block of values, counted once
    assert first.stats is None and len(batch) == 8
    batch.add(torch.ones(100))  # 800 + 150 + 100 distinct values reach the bound
    assert first.stats is not None and first.stats.mean == 1.0 and len(batch) == 0


def test_views_share_previews_where_their_values_and_order_agree() -> None:
    torch.manual_seed(8)
    base = torch.randn(30, 40)
    batch = SummaryBatch(inline_limit=8)
    again, view, turned = batch.add(base), batch.add(base.view(30, 40)), batch.add(base.t())
    first = batch.add(base)
    batch.flush()
    assert view.heatmap is first.heatmap and again.heatmap is first.heatmap
    assert turned.heatmap is not first.heatmap and turned.histogram is first.histogram
    assert turned.heatmap == summarize(base.t().contiguous(), 8).heatmap
    assert first.model_dump_json() == summarize(base.clone(), 8).model_dump_json()


def test_views_of_the_same_values_share_statistics_equal_to_their_own() -> None:
    torch.manual_seed(3)
    base = torch.randn(12, 20)
    views = [base, base.t(), base.reshape(20, 12), base.permute(1, 0)[:, None, :]]
    others = [  # other values, some at the same address
        base[:6],
        base[:, :5],
        base.t()[::2],
        base[:1, ::2],
        base[:, :1],
        base[None, :, ::2],
        torch.randn(12, 20),
    ]
    batch = SummaryBatch(inline_limit=8)
    shared = [batch.add(v, preview=False) for v in views]
    apart = [batch.add(v, preview=False) for v in others]
    batch.flush()
    assert all(d.stats is shared[0].stats for d in shared)
    assert all(d.stats is not shared[0].stats for d in apart)
    for t, data in zip(views + others, shared + apart, strict=True):
        alone = summarize(t.contiguous().clone(), inline_limit=8, preview=False)
        assert data.stats == alone.stats


def test_stats_of_tensors_bigger_than_a_block_equal_double_precision_ones() -> None:
    tensors = big_tensors()
    assert all(t.numel() > BLOCK_ELEMENTS for t in tensors)
    for t, stats in zip(tensors, batch_stats(tensors), strict=True):
        x = t.double()
        low, high = torch.aminmax(x)
        expected = [v.item() for v in (low, high, x.mean(), torch.std(x, correction=0))]
        got = [stats.min, stats.max, stats.mean, stats.std]
        assert got == pytest.approx(expected, rel=2e-6, abs=1e-12, nan_ok=True)
    with_zero = next(t for t in tensors if t.min() == 0)
    (stats,) = batch_stats([with_zero])  # the sign of a zero bound as aminmax gives it
    assert repr(stats.min) == repr(torch.aminmax(with_zero)[0].item())


def test_tensors_of_one_shape_and_two_precisions_share_a_block() -> None:
    torch.manual_seed(7)
    tensors = [torch.randn(70, 80), torch.randn(70, 80, dtype=torch.float64) + 2]
    tensors += [torch.randn(70, 80) * 5 for _ in range(30)]  # more than one block of them
    assert sum(t.numel() for t in tensors) > BLOCK_ELEMENTS
    batch = SummaryBatch(inline_limit=8)
    together = [batch.add(t) for t in tensors]
    batch.flush()
    for t, data in zip(tensors, together, strict=True):
        assert data.model_dump_json() == summarize(t, inline_limit=8).model_dump_json()


def test_summaries_in_threads_at_once_equal_summaries_alone() -> None:
    tensors = big_tensors()[:4] + _mixed_tensors()
    alone = [summarize(t, inline_limit=8).model_dump_json() for t in tensors]
    start = threading.Barrier(4)

    def summarize_all() -> list[str]:
        start.wait()
        return [summarize(t, inline_limit=8).model_dump_json() for t in tensors]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: summarize_all(), range(4)))
    assert all(result == alone for result in results)


def test_tensors_that_require_grad_are_summarised_as_their_values() -> None:
    torch.manual_seed(10)
    leaf = torch.randn(100, 40, requires_grad=True)
    tensors = [leaf, leaf * 2, torch.randn(3, dtype=torch.complex64, requires_grad=True)]
    for t in tensors:
        assert summarize(t, 64).model_dump_json() == summarize(t.detach(), 64).model_dump_json()
    assert leaf.grad is None and leaf.grad_fn is None


def test_a_big_tensors_histogram_counts_a_sample_and_says_so() -> None:
    torch.manual_seed(0)
    weight = torch.randn(512, 512, 3, 3)
    data = summarize(weight, 64)
    assert data.histogram.sample == HISTOGRAM_SAMPLE
    assert sum(data.histogram.counts) == HISTOGRAM_SAMPLE
    assert '"sample":65536' in data.histogram.model_dump_json()
    # the statistics and the edges still come from every value
    assert data.stats.min == pytest.approx(float(weight.min()), rel=1e-6)
    assert data.histogram.edges[0] == pytest.approx(float(weight.min()), rel=1e-3)
    full = torch.histc(weight, 16, float(weight.min()), float(weight.max()))
    shares = torch.tensor(data.histogram.counts, dtype=torch.float64) / HISTOGRAM_SAMPLE
    assert torch.all((shares - full.double() / weight.numel()).abs() < 0.005)


def test_a_histogram_of_every_value_has_no_sample_field() -> None:
    data = summarize(torch.randn(256, 256), 64)
    assert data.histogram.sample is None and sum(data.histogram.counts) == 256 * 256
    assert "sample" not in data.histogram.model_dump_json()


def test_a_big_tensor_with_infinities_counts_a_sample_of_its_finite_values() -> None:
    values = torch.randn(4 * HISTOGRAM_SAMPLE)
    values[::7] = float("inf")
    histogram = summarize(values, 64).histogram
    assert histogram.sample == HISTOGRAM_SAMPLE and sum(histogram.counts) == HISTOGRAM_SAMPLE


def test_small_tensors_summarised_from_their_values_equal_those_summarised_by_torch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    torch.manual_seed(5)
    tensors = [
        torch.randn(8, 16),
        torch.randn(16, 8).double().t(),
        torch.randn(3) * 1e30,
        torch.randn(30) * 1e37,  # (x - low) * 16 would overflow float32: counted by torch
        torch.randn(30) * 1e-37,  # the width / 16 would be subnormal
        torch.tensor([[0.0, -0.0], [-0.0, -0.0]]),
        torch.tensor(-0.0),
        torch.randint(-5, 5, (4, 4)),
    ]
    read = [summarize(t, inline_limit=-1) for t in tensors]  # small: read into Python
    inline = [summarize(t, inline_limit=t.numel()) for t in tensors]
    monkeypatch.setattr(tensor_summary, "READ_UP_TO", 0)
    by_torch = [summarize(t, inline_limit=-1) for t in tensors]
    for t, mine, shown, theirs in zip(tensors, read, inline, by_torch, strict=True):
        assert json.dumps(mine.model_dump()) == json.dumps(theirs.model_dump()), t
        assert repr(shown.stats) == repr(theirs.stats), t
