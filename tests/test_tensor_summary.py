"""TensorData: inline values, statistics, previews, odd dtypes."""

from __future__ import annotations

import json
import math
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
import torch.nn.functional as F

from app import tensor_summary
from app.schemas import TensorData
from app.tensor_summary import (
    BLOCK_ELEMENTS,
    SummaryBatch,
    batch_heatmaps,
    batch_histograms,
    batch_stats,
    listed_counts,
    round_significant,
    round_tensor,
    rounded_all,
    summarize,
)
from app.tensor_summary_blocks import flat_elements
from app.value_sample import HISTOGRAM_SAMPLE, histogram_values, sample_positions


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


def test_round_significant() -> None:
    assert round_significant(0.0123456789, 4) == 0.01235
    assert round_significant(float("nan"), 4) != round_significant(float("nan"), 4)


def test_rounding_all_at_once_equals_rounding_each() -> None:
    torch.manual_seed(2)
    values = [0.0, -0.0, 1.0, 5e-324, 1.7976931348623157e308, 9.99999949, 0.12345675]
    values += [float("inf"), float("-inf"), float("nan"), 123456789.0, -2.5e-7]
    values += (
        torch.randn(500, dtype=torch.float64) * 10 ** torch.randint(-12, 12, (500,))
    ).tolist()
    for digits in (4, 7):
        expected = [float(format(v, f".{digits}g")) for v in values]
        got = rounded_all(values, digits)
        assert [repr(v) for v in got] == [repr(v) for v in expected]  # -0.0 and nan included
    assert rounded_all([], 7) == []


def test_rounding_all_at_once_equals_formatting_on_many_values() -> None:
    torch.manual_seed(9)
    wide = torch.randn(30_000, dtype=torch.float64) * 10 ** torch.randint(-30, 30, (30_000,))
    whole = torch.randint(0, 10**8, (20_000,), dtype=torch.float64)
    decimals = whole / 10 ** torch.randint(0, 14, (20_000,), dtype=torch.float64)
    values = wide.tolist() + torch.randn(30_000).tolist() + decimals.tolist()
    values += [k * 0.5 for k in range(-2000, 2000)] + [12345675.0, 1234567.5, 9999999.5]
    values += [0.99999995, 1e22, 1e23, 1e-22, 1e-23, 2.5e-8, -0.0]
    for digits in (4, 7):
        expected = [repr(float(format(v, f".{digits}g"))) for v in values]
        assert [repr(v) for v in rounded_all(values, digits)] == expected


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


def test_batched_histograms_equal_histc() -> None:
    torch.manual_seed(1)
    tensors = [torch.randn(300), torch.randn(300) * 7, torch.rand(12, 25), torch.full((77,), 2.0)]
    ranges = [(float(t.min()), float(t.max())) for t in tensors]
    for t, (low, high), histogram in zip(
        tensors, ranges, batch_histograms(tensors, ranges), strict=True
    ):
        expected = torch.histc(t.float(), bins=16, min=low, max=high)
        assert histogram.counts == [int(c) for c in expected.tolist()]
        assert histogram.edges[0] == pytest.approx(low, rel=1e-3)
        assert histogram.edges[-1] == pytest.approx(high, rel=1e-3)


def test_batched_heatmaps_equal_per_tensor_pooling() -> None:
    torch.manual_seed(2)
    tensors = [torch.randn(40, 20), torch.randn(40, 20), torch.randn(4, 6), torch.randn(2, 50, 3)]
    for t, heatmap in zip(tensors, batch_heatmaps(tensors), strict=True):
        plane = t.reshape(t.shape[0], -1)
        size = (min(plane.shape[0], 16), min(plane.shape[1], 16))
        expected = F.adaptive_avg_pool2d(plane[None, None], size)[0, 0]
        assert torch.tensor(heatmap, dtype=torch.float64) == pytest.approx(
            expected.double(), rel=1e-3, abs=1e-6
        )


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


def test_histogram_edges_are_the_rounded_steps_from_min_to_max() -> None:
    torch.manual_seed(4)
    tensors = [torch.randn(100) * 3 + 1, torch.rand(70) * 1e-5, torch.full((80,), -2.5)]
    ranges = [(float(t.min()), float(t.max())) for t in tensors]
    for (low, high), histogram in zip(ranges, batch_histograms(tensors, ranges), strict=True):
        step = (high - low) / 16
        assert histogram.edges == [round_significant(low + i * step, 4) for i in range(17)]


def _big_tensors() -> list[torch.Tensor]:
    """Tensors bigger than a block of work, laid out in every way the block paths tell apart."""
    torch.manual_seed(5)
    side = 512
    grad_like = torch.randn(side, side * 2) * 1e-4 + 3e-9  # mean far below its values
    with_zero = torch.relu(torch.randn(300, 600))
    with_zero.view(-1)[::7] = -0.0
    return [
        grad_like,
        grad_like.t(),  # dense, not contiguous
        torch.randn(3, 400, 500)[1].t(),  # dense, transposed, past the start of its storage
        torch.randn(1).expand(200_000),  # one value seen 200,000 times
        torch.randint(-9, 9, (300_000,)),  # whole numbers, in double
        torch.randn(600, 700)[:, ::2],  # neither: copied
        torch.randn(160_000, dtype=torch.float64) * 1e3 + 7,
        with_zero,
        torch.full((140_000,), 0.1),
        torch.cat([torch.randn(150_000), torch.tensor([float("inf")])]),
        torch.cat([torch.randn(150_000), torch.tensor([float("nan")])]),
    ]


def test_stats_of_tensors_bigger_than_a_block_equal_double_precision_ones() -> None:
    tensors = _big_tensors()
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


def test_histograms_of_tensors_bigger_than_a_block_equal_histc() -> None:
    tensors = [t for t in _big_tensors() if bool(torch.isfinite(t).all())]
    ranges = [(float(t.min()), float(t.max())) for t in tensors]
    for t, (low, high), histogram in zip(
        tensors, ranges, batch_histograms(tensors, ranges), strict=True
    ):
        expected = torch.histc(t.float(), bins=16, min=low, max=high)
        assert histogram.counts == [int(c) for c in expected.tolist()]


def test_heatmaps_of_big_planes_average_their_windows_in_double_precision() -> None:
    torch.manual_seed(6)
    even = torch.randn(512, 64, 3, 3) * 1e-3 + 1e-9  # 16 × 16 equal windows of 32 × 36
    long_rows = torch.randn(4, 50_000)
    one_row = torch.randn(1, 16 * (BLOCK_ELEMENTS + 5))  # a cell's run longer than a block
    uneven = torch.randn(1000, 200)  # windows of adaptive pooling overlap: pooled as before
    for t in (even, even.transpose(0, 1), long_rows[:, :48_000], one_row, uneven):
        plane = t.reshape(t.shape[0], -1).double()
        size = (min(plane.shape[0], 16), min(plane.shape[1], 16))
        expected = F.adaptive_avg_pool2d(plane[None, None], size)[0, 0]
        (heatmap,) = batch_heatmaps([t])
        assert torch.tensor(heatmap, dtype=torch.float64) == pytest.approx(
            expected, rel=1e-3, abs=1e-12
        )


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
    tensors = _big_tensors()[:4] + _mixed_tensors()
    alone = [summarize(t, inline_limit=8).model_dump_json() for t in tensors]
    start = threading.Barrier(4)

    def summarize_all() -> list[str]:
        start.wait()
        return [summarize(t, inline_limit=8).model_dump_json() for t in tensors]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: summarize_all(), range(4)))
    assert all(result == alone for result in results)


def test_histograms_of_extreme_ranges_equal_histc() -> None:
    torch.manual_seed(9)
    tensors = [
        torch.randn(500) * 1e37,  # (x - low) * 16 would overflow float32
        torch.randn(500) * 1e-37,  # the width / 16 would be subnormal
        torch.randn(70_000) * 1e-3 + 5,  # a histogram counted in scratch blocks
    ]
    ranges = [(float(t.min()), float(t.max())) for t in tensors]
    for t, (low, high), histogram in zip(
        tensors, ranges, batch_histograms(tensors, ranges), strict=True
    ):
        expected = torch.histc(t, bins=16, min=low, max=high)
        assert histogram.counts == [int(c) for c in expected.tolist()]


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


def test_counts_of_values_read_into_python_equal_batched_histograms() -> None:
    torch.manual_seed(4)
    tensors = [
        torch.randn(64),
        torch.randn(8, 16) * 7,
        torch.full((5,), 2.0),  # an empty range, widened by one on each side
        torch.randn(40).double() * 1e-3 + 5,  # doubles counted as float32
        torch.arange(17.0),  # values on the bin edges
    ]
    ranges = [(float(t.float().min()), float(t.float().max())) for t in tensors]
    for t, bounds, histogram in zip(
        tensors, ranges, batch_histograms(tensors, ranges), strict=True
    ):
        assert listed_counts(t.reshape(-1).tolist(), *bounds) == histogram.counts, t


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


def test_rounding_a_tensor_leaves_zeros_and_non_finite_values_as_they_are() -> None:
    torch.manual_seed(6)
    special = [0.0, -0.0, float("inf"), float("-inf"), 1e-300, -1.7e308, 999.95, 0.00099995]
    x = torch.cat([torch.tensor(special, dtype=torch.float64), torch.randn(500).double() * 1e5])
    rounded = round_tensor(torch.cat([x, torch.tensor([float("nan")], dtype=torch.float64)]), 4)
    assert rounded[-1].isnan()
    for value, got in zip(x.tolist(), rounded[:-1].tolist(), strict=True):
        if value == 0 or not math.isfinite(value):
            assert repr(got) == repr(value)  # -0.0 stays -0.0
        else:  # the nearest 4-digit decimal, within a rounding of the arithmetic
            assert got == pytest.approx(round_significant(value, 4), rel=1e-15)


def _previews_one_by_one(t: torch.Tensor) -> tuple[object, object, object]:
    """Stats, heatmap and histogram of one tensor by the separate batch functions."""
    (stats,) = batch_stats([t])
    heatmap = batch_heatmaps([t])[0] if t.dim() >= 2 else None
    if not (math.isfinite(stats.min) and math.isfinite(stats.max)):
        return stats, heatmap, tensor_summary._histogram(t)  # of its finite values
    values, sampled = histogram_values(flat_elements(t))
    bounds = tuple(float(v) for v in torch.aminmax(t.float().reshape(-1)))
    (histogram,) = batch_histograms([values], [bounds], [sampled])
    return stats, heatmap, histogram


def test_previews_taken_while_stats_are_read_equal_those_taken_apart() -> None:
    torch.manual_seed(23)
    weight = torch.randn(96, 40)
    tensors = [
        *(torch.randn(64, 48) * 10**k for k in range(-9, 3, 2)),  # stacked by shape
        weight,
        weight.t(),  # the same values laid out otherwise: a heatmap of its own
        torch.relu(torch.randn(33, 17)),  # zero bounds
        torch.randn(6, 7, 8, dtype=torch.float64),
        torch.full((40, 40), 0.1),  # a flat range
        torch.tensor([[1.0, float("inf")], [2.0, 3.0]]).repeat(20, 20),  # counted apart
        torch.randn(256, 256) * 1e-8,  # a plane averaged by view, met once
        torch.randn(512, 4608) * 1e-3,  # bigger than a block: runs across blocks, a sample
        torch.randn(1024, 2304).t(),  # bigger than a block, transposed: pooled apart
        torch.randn(300, 500),  # bigger than a block, windows that overlap
        torch.randn(200_000),
    ]
    batch = SummaryBatch(inline_limit=0)
    datas = [batch.add(t) for t in tensors]
    batch.flush()
    for t, data in zip(tensors, datas, strict=True):
        stats, heatmap, histogram = _previews_one_by_one(t)
        assert repr(data.stats) == repr(stats), t.shape
        assert repr(data.heatmap) == repr(heatmap), t.shape
        assert repr(data.histogram) == repr(histogram), t.shape


def test_run_sums_and_sample_read_with_the_stats_equal_those_read_apart() -> None:
    from app.tensor_summary import _run_sums
    from app.tensor_summary_blocks import _stats_by_blocks

    torch.manual_seed(24)
    for t, run in ((torch.randn(1024, 2304), 144), (torch.randn(512, 4608) * 1e-9, 288)):
        flat = t.reshape(-1)
        positions = sample_positions(flat.numel(), flat.device)
        row, sums, values = _stats_by_blocks(t, run, positions)
        assert sums is not None and values is not None
        assert torch.equal(sums, _run_sums(flat, run))  # bit for bit
        assert torch.equal(values, histogram_values(flat)[0])
        assert row == _stats_by_blocks(t)[0]
