"""What rules read of a recorded step: recorded values back as tensors, shapes as text."""

from __future__ import annotations

import math

import torch

from app.schemas import TensorData
from app.step_view import ValueCache, bracketed_shape, browser_number, to_tensor


def data(values: object, shape: list[int], dtype: str = "float32") -> TensorData:
    return TensorData(shape=shape, dtype=dtype, values=values)


def test_numbers_come_back_as_float64_tensors_of_their_shape() -> None:
    t = to_tensor(data([[1.0, 2.5], [3.0, -0.0]], [2, 2]))
    assert t is not None and t.dtype == torch.float64 and t.shape == (2, 2)
    assert t.tolist() == [[1.0, 2.5], [3.0, -0.0]] and math.copysign(1, t[1, 1].item()) < 0


def test_non_finite_values_written_as_strings_come_back_as_numbers() -> None:
    t = to_tensor(data([1.0, "NaN", "Infinity", "-Infinity"], [4]))
    assert t is not None and math.isnan(t[1]) and t[2] == math.inf and t[3] == -math.inf
    scalar = to_tensor(data("NaN", []))
    assert scalar is not None and scalar.shape == () and math.isnan(scalar.item())


def test_integers_keep_their_dtype_and_odd_values_give_none() -> None:
    t = to_tensor(data([1, 2, 3], [3], "int64"))
    assert t is not None and t.dtype == torch.int64
    assert to_tensor(data([1.0, 2.0], [3])) is None  # values do not fill the shape
    assert to_tensor(data(None, [100])) is None  # not recorded inline
    assert to_tensor(None) is None


def test_shape_text() -> None:
    assert (
        bracketed_shape([2, 3]) == "[2×3]" == bracketed_shape([2, 3])
    )  # the second from the cache
    assert bracketed_shape([]) == bracketed_shape(None) == "[]"
    assert bracketed_shape(torch.Size([4])) == "[4]"


def _allclose(value: torch.Tensor, recorded: TensorData) -> bool | None:
    """What a rule's check said before the Python comparison: torch.allclose in float64."""
    expected = to_tensor(recorded)
    if expected is None:
        return None
    return value.shape == expected.shape and bool(
        torch.allclose(value.to(torch.float64), expected.to(torch.float64), 1e-4, 1e-5)
    )


def test_agreement_is_what_allclose_says() -> None:
    nan, inf = math.nan, math.inf
    cases = [
        (torch.tensor(2.0), data(2.0, [])),
        (torch.tensor([1.0, 2.0]), data([1.0, 2.00001], [2])),  # within rtol
        (torch.tensor([1.0, 2.0]), data([1.0, 2.01], [2])),  # outside
        (torch.tensor([1e-6]), data([0.0], [1])),  # within atol
        (torch.tensor([1e-4]), data([0.0], [1])),  # outside atol
        (torch.tensor([-0.0]), data([0.0], [1])),
        (torch.tensor([nan]), data(["NaN"], [1])),  # NaN is never close
        (torch.tensor([inf, -inf]), data(["Infinity", "-Infinity"], [2])),
        (torch.tensor([inf]), data(["-Infinity"], [1])),
        (torch.tensor([inf]), data([1e308], [1])),
        (torch.tensor([[1.0, 2.0], [3.0, 4.0]]), data([[1.0, 2.0], [3.0, 4.0]], [2, 2])),
        (torch.tensor([1.0, 2.0, 3.0, 4.0]), data([[1.0, 2.0], [3.0, 4.0]], [2, 2])),  # shape
        (torch.tensor([1.0, 2.0]), data([1.0, 2.0, 3.0], [2])),  # values do not fit: None
        (torch.tensor([1.0]), data(None, [1])),
        (torch.tensor([1, 0], dtype=torch.int64), data([1.0, 0.0], [2])),
        (torch.tensor([True]), data([True], [1])),
        (torch.tensor([0.1], dtype=torch.float32), data([0.1], [1], "float64")),
        (torch.tensor([3.0]), data([3], [1], "int64")),  # an integer gradient: allclose path
        (torch.arange(100.0), data(list(range(100)), [100])),  # many values: allclose path
    ]
    values = ValueCache()
    for value, recorded in cases:
        assert values.agrees(value, recorded) is _allclose(value, recorded), (value, recorded)
    assert values.agrees(torch.tensor([1.0]), None) is None


def test_cached_values_are_made_once_per_record_and_number() -> None:
    values, recorded = ValueCache(), data([1.5, -2.0], [2])
    t = values.tensor(recorded)
    assert t is values.tensor(recorded) and t.tolist() == [1.5, -2.0]
    assert values.text(t, [2]) == "[1.5, -2]"
    assert values.text(torch.zeros(7), [7]) == "[7]"  # too many to write out
    assert values.number(2) is values.number(2.0) and values.number(2).dtype == torch.float64
    negative_zero = values.number(-0.0)  # a different number to divide by
    assert negative_zero is not values.number(0.0) and math.copysign(1, negative_zero.item()) < 0


def test_browser_numbers_tell_booleans_from_integers() -> None:
    assert browser_number(1) == "1" and browser_number(True) == "True"
    assert browser_number(1.0) == "1" and browser_number(0.731059) == "0.7311"


def _browser_number_as_formatted_twice(v: float) -> str:
    """browser_number's text of a number in [1e-3, 1e5), as it was first written."""
    return format(float(f"{v:.4g}"), "g")


def test_browser_numbers_between_a_thousandth_and_1e5_read_as_before() -> None:
    generator = torch.Generator().manual_seed(0)
    exponents = torch.rand(20_000, generator=generator, dtype=torch.float64) * 8 - 3
    values = [float(x) for x in 10**exponents]
    values += [v * 4.99 for v in (1e-3, 1e-2, 0.1, 1, 10, 100, 1000)]
    edges = [9999.4, 9999.5, 9999.49999, 9999.50001, 99999.9, 0.001, 0.0010005, 0.9999, 1.00005]
    values += edges + [math.nextafter(e, math.inf) for e in edges]
    values += [math.nextafter(e, -math.inf) for e in edges]
    checked = 0
    for v in values + [-v for v in values]:
        if v.is_integer() or not 1e-3 <= abs(v) < 1e5:
            continue
        assert browser_number.__wrapped__(v) == _browser_number_as_formatted_twice(v), v
        checked += 1
    assert checked > 40_000
