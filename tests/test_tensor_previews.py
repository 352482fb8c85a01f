"""Heatmaps and histograms: batched, from values read into Python, from the stats' blocks."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from app import tensor_previews
from app.rounding import round_significant
from app.tensor_previews import batch_heatmaps, batch_histograms, listed_counts
from app.tensor_summary import SummaryBatch, batch_stats
from app.tensor_summary_blocks import BLOCK_ELEMENTS, flat_elements
from app.value_sample import histogram_values, sample_positions
from tests.big_tensors import big_tensors


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


def test_histogram_edges_are_the_rounded_steps_from_min_to_max() -> None:
    torch.manual_seed(4)
    tensors = [torch.randn(100) * 3 + 1, torch.rand(70) * 1e-5, torch.full((80,), -2.5)]
    ranges = [(float(t.min()), float(t.max())) for t in tensors]
    for (low, high), histogram in zip(ranges, batch_histograms(tensors, ranges), strict=True):
        step = (high - low) / 16
        assert histogram.edges == [round_significant(low + i * step, 4) for i in range(17)]


def test_histograms_of_tensors_bigger_than_a_block_equal_histc() -> None:
    tensors = [t for t in big_tensors() if bool(torch.isfinite(t).all())]
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


def _previews_one_by_one(t: torch.Tensor) -> tuple[object, object, object]:
    """Stats, heatmap and histogram of one tensor by the separate batch functions."""
    (stats,) = batch_stats([t])
    heatmap = batch_heatmaps([t])[0] if t.dim() >= 2 else None
    if not (math.isfinite(stats.min) and math.isfinite(stats.max)):
        return stats, heatmap, tensor_previews.tensor_histogram(t)  # of its finite values
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
    from app.tensor_previews import _run_sums
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
