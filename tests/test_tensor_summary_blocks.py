"""Statistics read in blocks: bounds, tensors stacked by shape and small ones joined."""

from __future__ import annotations

import torch

from app.rounding import round_significant
from app.tensor_summary import STATS_DIGITS
from app.tensor_summary_blocks import STACKED_FROM, listed_stats, raw_stats, row_bounds


def test_bounds_equal_aminmax_with_signed_zeros_and_nans() -> None:
    torch.manual_seed(3)
    choices = torch.tensor([0.0, -0.0, 1.0, -2.0, 3.0, float("nan")])
    for columns, dtype in (
        (1, torch.float32),
        (7, torch.float64),
        (64, torch.float32),
        (1000, torch.float64),
    ):
        picks = torch.randint(0, 5, (40, columns))
        picks[::7, 0] = 5  # a few rows with a NaN
        picks[1::5] = picks[1::5].clamp(min=2)  # rows without a zero
        picks[2::5] = torch.where(picks[2::5] == 1, 0, picks[2::5])  # zeros all positive
        matrix = choices[picks].to(dtype)
        low, high = row_bounds(matrix)
        want_low, want_high = torch.aminmax(matrix, dim=1)
        assert repr(low) == repr(want_low.tolist())  # -0.0 and 0.0 told apart
        assert repr(high) == repr(want_high.tolist())


def test_small_tensors_summarised_together_equal_those_stacked_by_shape() -> None:
    torch.manual_seed(8)
    small = [
        torch.tensor([0.0, -0.0, 1.5]),  # zero bounds, their sign as aminmax along a row gives it
        torch.tensor([-0.0, -3.0]),
        torch.tensor([[0.0], [-0.0]]),
        torch.tensor(-0.0),  # a scalar among other shapes of its dtype: joined with them
        torch.tensor([-0.0]),
        torch.tensor([[0.0]]),
        torch.tensor(2.5, dtype=torch.float64),
        torch.randn(5, 7) * 1e-8,
        torch.randn(300).double() + 1e6,
        torch.tensor([1.0, float("nan"), -1.0]),
        torch.tensor([float("inf"), 1.0]),
        torch.tensor([float("-inf"), float("inf")]),
        torch.randint(-3, 3, (9,)),
        torch.randn(1000),
    ]
    together = raw_stats(small)  # shapes met once each: one vector per dtype
    for t, row in zip(small, together, strict=True):
        # the same tensor met STACKED_FROM times is stacked by shape and reduced along rows
        (stacked, *_) = raw_stats([t] * STACKED_FROM)
        assert repr(row[:2]) == repr(stacked[:2]), t  # bounds exactly, signed zeros included
        # mean and std summed in another order: equal once rounded as the explorer shows them
        shown = [round_significant(v, STATS_DIGITS) for v in row[2:]]
        assert repr(shown) == repr([round_significant(v, STATS_DIGITS) for v in stacked[2:]]), t


def test_stats_of_values_read_into_python_equal_those_reduced_by_torch() -> None:
    torch.manual_seed(21)
    choices = torch.tensor([0.0, -0.0, 1.0, -2.0])
    tensors = [
        torch.tensor([0.0, -0.0, 1.5]),  # both zeros: the bound's sign as aminmax gives it
        torch.tensor([-0.0, 0.0, -1.5]),
        torch.tensor([-0.0, -0.0]),  # a mean of negative zeros alone is +0, as torch sums it
        torch.tensor([0.0, -0.0]),
        torch.tensor([-0.0]),
        *(torch.tensor(v) for v in (0.0, 2.5, float("nan"), float("inf"), -1e-40)),  # one value
        torch.zeros(3, 4),
        torch.tensor([1e-45, -1e-45]),  # subnormal values whose sum is zero
        torch.tensor([1.0, float("nan"), -1.0]),
        torch.tensor([float("-inf"), float("inf")]),
        torch.randn(8, 16),
        torch.randn(64).double() * 1e6,
        *(choices[torch.randint(0, 4, (n,))] for n in (1, 2, 5, 17, 40)),
    ]
    together = listed_stats([t.reshape(-1).tolist() for t in tensors])  # by numpy
    alone = [listed_stats([t.reshape(-1).tolist()])[0] for t in tensors]  # few: by Python
    for t, row in [*zip(tensors, together, strict=True), *zip(tensors, alone, strict=True)]:
        (stacked, *_) = raw_stats([t.double()] * STACKED_FROM)
        assert repr(row[:2]) == repr(stacked[:2]), t  # bounds exactly, signed zeros included
        assert repr(row[2]) == repr(stacked[2]) or t.dtype == torch.float64, t
        shown = [round_significant(v, STATS_DIGITS) for v in row[2:]]
        assert repr(shown) == repr([round_significant(v, STATS_DIGITS) for v in stacked[2:]]), t


def test_few_values_summarised_in_python_show_the_stats_torch_gives() -> None:
    generator = torch.Generator().manual_seed(12)
    for trial in range(300):
        size = int(torch.randint(2, 200, (1,), generator=generator))
        scale = 10.0 ** float(torch.randint(-20, 20, (1,), generator=generator))
        t = torch.randn(size, generator=generator) * scale + (trial % 3) * scale
        (row,) = listed_stats([t.tolist()])
        (stacked, *_) = raw_stats([t.double()] * STACKED_FROM)
        assert row[:3] == stacked[:3], t  # bounds, and the mean of an exact double sum
        shown = round_significant(row[3], STATS_DIGITS)
        assert shown == round_significant(stacked[3], STATS_DIGITS), t
