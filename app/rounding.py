"""Values rounded to significant digits: one, every element of a tensor, or many at once."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch


def round_significant(value: float, digits: int) -> float:
    """value rounded to a number of significant digits; non-finite values unchanged."""
    if not math.isfinite(value) or value == 0:
        return value
    return float(f"{value:.{digits}g}")


def round_tensor(x: torch.Tensor, digits: int) -> torch.Tensor:
    """Every finite element rounded to a number of significant digits.

    A zero or non-finite element has magnitude 0, and so is scaled by 10**(digits - 1) and
    back, which leaves it as it was (infinities, NaN and the sign of a zero included): no
    masks needed, and every step but the first works in place."""
    magnitude = x.abs().log10_().floor_().nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
    factor = torch.pow(10.0, magnitude.neg_().add_(digits - 1))
    return (x * factor).round_().div_(factor)


def _formatted_all(values: Sequence[float], digits: int) -> list[float]:
    """float(format(v, f".{digits}g")) of every value, written by one formatting call.

    '%.Ng' and format(v, '.Ng') write the same text (one correctly rounded decimal), and
    no such text holds a space, so one joined string split on spaces gives every value's text.
    """
    if not values:
        return []
    texts = ((f"%.{digits}g " * len(values)) % tuple(values)).split()
    return list(map(float, texts))


_POWERS_OF_TEN = np.array([float(10**k) for k in range(23)])  # each exact in a double


def rounded_all(values: Sequence[float], digits: int) -> list[float]:
    """float(format(v, f".{digits}g")) of every value, computed for all at once.

    v scaled by an exact power of ten to `digits` digits before the point, rounded to an
    integer n, and n divided (or multiplied) by that power is one correctly rounded operation
    on exact operands: the double nearest the decimal that format writes. Values where that
    does not hold or cannot be told (zeros, non-finite, powers past 10**22, a scaled value
    within rounding of a tie or of the next decade) are formatted one by one.
    """
    if len(values) < 64:  # fewer than numpy's own overhead is worth
        return _formatted_all(values, digits)
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(all="ignore"):
        magnitude = np.abs(v)
        power = (digits - 1) - np.floor(np.log10(magnitude))
        exact = np.isfinite(power) & (np.abs(power) <= 22)
        scale = _POWERS_OF_TEN[np.where(exact, np.abs(power), 0).astype(np.int64)]
        up = power >= 0
        scaled = np.where(up, magnitude * scale, magnitude / scale)
        fraction = scaled - np.floor(scaled)
        exact &= scaled >= _POWERS_OF_TEN[digits - 1] * (1 + 1e-12)
        exact &= (scaled < _POWERS_OF_TEN[digits]) & (np.abs(fraction - 0.5) > 1e-6)
        whole = np.rint(scaled)
        rounded = np.copysign(np.where(up, whole / scale, whole * scale), v)
    result: list[float] = rounded.tolist()
    for i in np.flatnonzero(~exact).tolist():
        result[i] = float(format(values[i], f".{digits}g"))
    return result
