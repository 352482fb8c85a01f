"""What rules read of a recorded step: recorded values back as tensors, shapes as text."""

from __future__ import annotations

import math

import torch

from app.schemas import TensorData
from app.step_view import bracketed_shape, to_tensor


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
