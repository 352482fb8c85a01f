"""Rounding to significant digits: one value, a tensor's elements, many values at once."""

from __future__ import annotations

import math

import pytest
import torch

from app.rounding import round_significant, round_tensor, rounded_all


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
