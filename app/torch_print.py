"""Numbers printed the way `print(tensor)` prints them (torch's default print options)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

PRECISION = 4  # torch.set_printoptions(precision=4), the default


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if value in ("NaN", "nan"):
        return math.nan
    if value in ("Infinity", "inf"):
        return math.inf
    if value in ("-Infinity", "-inf"):
        return -math.inf
    return None


def torch_value_texts(
    values: Sequence[Any], floating: bool = True, limit: int | None = None
) -> list[str]:
    """Each value as torch prints it inside one tensor: one shared mode for all of them.

    With limit, only the first limit values are written (in the mode all of them share).
    """
    numbers = [_as_float(v) for v in values]
    if any(n is None for n in numbers):
        return [str(v) for v in values[:limit]]
    finite = [abs(n) for n in numbers if n is not None and math.isfinite(n)]
    nonzero = [n for n in finite if n != 0]

    def special(n: float) -> str | None:
        if math.isnan(n):
            return "nan"
        if math.isinf(n):
            return "inf" if n > 0 else "-inf"
        return None

    if not floating:
        return [str(int(n)) if special(n) is None else special(n) for n in numbers[:limit]]  # type: ignore[arg-type]
    whole = all(n == math.ceil(n) for n in finite)
    low = min(nonzero) if nonzero else 0.0
    high = max(nonzero) if nonzero else 0.0
    if whole:
        sci = bool(nonzero) and (high / low > 1000.0 or high > 1.0e8)
        pattern = f"{{:.{PRECISION}e}}" if sci else "{:.0f}."
    else:
        sci = bool(nonzero) and (high / low > 1000.0 or high > 1.0e8 or low < 1.0e-4)
        pattern = f"{{:.{PRECISION}e}}" if sci else f"{{:.{PRECISION}f}}"
    out = []
    for n in numbers[:limit]:
        assert n is not None
        text = special(n)
        out.append(text if text is not None else pattern.format(n))
    return out


def torch_number(value: Any, floating: bool = True) -> str:
    """One value as torch prints a one-element tensor of it."""
    return torch_value_texts([value], floating)[0]
