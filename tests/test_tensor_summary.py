"""TensorData: inline values, statistics, previews, odd dtypes."""

from __future__ import annotations

import json

import pytest
import torch

from app.schemas import TensorData
from app.tensor_summary import round_significant, summarize


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
    TensorData.model_validate_json(data.model_dump_json())


def test_non_finite_values_travel_as_strings() -> None:
    data = summarize(torch.tensor([1.0, float("nan"), float("inf")]), inline_limit=8)
    payload = json.loads(data.model_dump_json())
    assert payload["values"] == [1.0, "NaN", "Infinity"]
    big = summarize(torch.tensor([float("inf")] + [1.0] * 100), inline_limit=8)
    assert sum(big.histogram.counts) == 100


def test_round_significant() -> None:
    assert round_significant(0.0123456789, 4) == 0.01235
    assert round_significant(float("nan"), 4) != round_significant(float("nan"), 4)
