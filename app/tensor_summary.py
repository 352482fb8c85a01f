"""Turn a tensor into TensorData: values when small, statistics and previews when large."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from app.schemas import Histogram, Stats, TensorData

HEATMAP_SIDE = 16
HISTOGRAM_BINS = 16
PREVIEW_DIGITS = 4
STATS_DIGITS = 7


def dtype_name(dtype: torch.dtype) -> str:
    """'float32' for torch.float32."""
    return str(dtype).removeprefix("torch.")


def round_significant(value: float, digits: int) -> float:
    """value rounded to a number of significant digits; non-finite values unchanged."""
    if not math.isfinite(value) or value == 0:
        return value
    return float(f"{value:.{digits}g}")


def round_tensor(x: torch.Tensor, digits: int) -> torch.Tensor:
    """Every finite element rounded to a number of significant digits."""
    magnitude = torch.floor(torch.log10(x.abs()))
    magnitude = torch.where(torch.isfinite(magnitude), magnitude, torch.zeros_like(magnitude))
    factor = torch.pow(10.0, digits - 1 - magnitude)
    return torch.where(torch.isfinite(x), torch.round(x * factor) / factor, x)


def _as_real_float(t: torch.Tensor) -> torch.Tensor:
    if t.is_complex():
        return t.abs()
    if t.dtype in (torch.float32, torch.float64):
        return t
    return t.to(torch.float32 if t.is_floating_point() else torch.float64)


def _stats(x: torch.Tensor) -> Stats:
    low, high = torch.aminmax(x)
    std, mean = torch.std_mean(x, correction=0)
    low_v, high_v, mean_v, std_v = (
        round_significant(float(v.item()), STATS_DIGITS) for v in (low, high, mean, std)
    )
    return Stats.model_construct(min=low_v, max=high_v, mean=mean_v, std=std_v)


def _heatmap(x: torch.Tensor) -> list[list[float]] | None:
    if x.dim() < 2:
        return None
    plane = x.reshape(x.shape[0], -1).to(torch.float32)
    rows, cols = plane.shape
    if rows > HEATMAP_SIDE or cols > HEATMAP_SIDE:
        size = (min(rows, HEATMAP_SIDE), min(cols, HEATMAP_SIDE))
        plane = F.adaptive_avg_pool2d(plane[None, None], size)[0, 0]
    return round_tensor(plane.to(torch.float64), PREVIEW_DIGITS).tolist()


def _histogram(x: torch.Tensor) -> Histogram | None:
    finite = x if bool(torch.isfinite(x).all()) else x[torch.isfinite(x)]
    if finite.numel() == 0:
        return None
    finite = finite.to(torch.float32)
    low, high = (float(v) for v in torch.aminmax(finite))
    counts = torch.histc(finite, bins=HISTOGRAM_BINS, min=low, max=high)
    step = (high - low) / HISTOGRAM_BINS
    edges = [round_significant(low + i * step, PREVIEW_DIGITS) for i in range(HISTOGRAM_BINS + 1)]
    return Histogram.model_construct(edges=edges, counts=[int(c) for c in counts.tolist()])


def summarize(t: torch.Tensor, inline_limit: int, preview: bool = True) -> TensorData:
    """TensorData of a tensor: values up to inline_limit elements, else stats and previews."""
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    shape = list(t.shape)
    dtype = dtype_name(t.dtype)
    if t.numel() == 0:
        return TensorData.model_construct(
            shape=shape, dtype=dtype, values=t.tolist(), stats=None, heatmap=None, histogram=None
        )
    x = _as_real_float(t)
    stats = _stats(x)
    if t.numel() <= inline_limit:
        values = x.tolist() if t.is_complex() else t.tolist()
        return TensorData.model_construct(
            shape=shape, dtype=dtype, values=values, stats=stats, heatmap=None, histogram=None
        )
    return TensorData.model_construct(
        shape=shape,
        dtype=dtype,
        values=None,
        stats=stats,
        heatmap=_heatmap(x) if preview else None,
        histogram=_histogram(x) if preview else None,
    )


def scalar_of(t: torch.Tensor) -> float | None:
    """The value of a one-element tensor as a float, else None."""
    if t.numel() != 1 or t.is_complex():
        return None
    return float(t.detach().reshape(()).item())
