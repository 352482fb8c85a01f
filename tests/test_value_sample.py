"""The sample a big tensor's histogram counts: fixed, spread over every stretch, not aliased."""

from __future__ import annotations

import torch

from app.value_sample import HISTOGRAM_SAMPLE, histogram_values


def test_small_tensors_are_counted_whole() -> None:
    flat = torch.arange(HISTOGRAM_SAMPLE, dtype=torch.float32)
    values, sampled = histogram_values(flat)
    assert values is flat and not sampled


def test_one_position_in_each_stretch_the_same_every_time() -> None:
    numel = 5 * HISTOGRAM_SAMPLE + 123
    flat = torch.arange(numel, dtype=torch.float64)
    values, sampled = histogram_values(flat)
    assert sampled and values.numel() == HISTOGRAM_SAMPLE
    stretch = torch.arange(HISTOGRAM_SAMPLE + 1) * numel // HISTOGRAM_SAMPLE
    assert torch.all(values >= stretch[:-1]) and torch.all(values < stretch[1:])
    again, _ = histogram_values(flat.clone())
    assert torch.equal(values, again)


def test_the_programs_random_numbers_are_left_alone() -> None:
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    histogram_values(torch.zeros(3 * HISTOGRAM_SAMPLE + 1))
    assert torch.equal(torch.rand(3), expected)


def test_a_periodic_layout_does_not_line_up_with_the_sample() -> None:
    # every tap of a 512×512 3×3 kernel holds its own number: a stride of 36 would see one tap
    taps = torch.arange(9, dtype=torch.float32).repeat(512 * 512)
    values, _ = histogram_values(taps)
    share = torch.bincount(values.long(), minlength=9).double() / HISTOGRAM_SAMPLE
    assert torch.all((share - 1 / 9).abs() < 0.01), share
