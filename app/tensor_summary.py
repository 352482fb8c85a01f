"""Turn a tensor into TensorData: values when small, statistics and previews when large."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from app.schemas import Histogram, Stats, TensorData

HEATMAP_SIDE = 16
HISTOGRAM_BINS = 16
SIGNIFICANT_DIGITS = 4


def dtype_name(dtype: torch.dtype) -> str:
    """'float32' for torch.float32."""
    return str(dtype).removeprefix("torch.")


def _as_float64(t: torch.Tensor) -> np.ndarray:
    if t.is_complex():
        t = t.abs()
    return t.to(torch.float64).numpy()


def _stats(a: np.ndarray) -> Stats:
    low, high, mean, std = round_significant(np.array([a.min(), a.max(), a.mean(), a.std()]), 7)
    return Stats.model_construct(min=float(low), max=float(high), mean=float(mean), std=float(std))


def round_significant(a: np.ndarray, digits: int = SIGNIFICANT_DIGITS) -> np.ndarray:
    """Values rounded to a number of significant digits (previews need no more)."""
    with np.errstate(all="ignore"):
        magnitude = np.floor(np.log10(np.abs(a)))
        magnitude = np.where(np.isfinite(magnitude), magnitude, 0)
        factor = 10.0 ** (digits - 1 - magnitude)
        return np.where(np.isfinite(a), np.round(a * factor) / factor, a)


def _heatmap(t: torch.Tensor) -> list[list[float]] | None:
    if t.dim() < 2 or t.is_complex():
        return None
    plane = t.reshape(t.shape[0], -1).to(torch.float32)
    rows, cols = plane.shape
    if rows > HEATMAP_SIDE or cols > HEATMAP_SIDE:
        plane = F.adaptive_avg_pool2d(
            plane[None, None], (min(rows, HEATMAP_SIDE), min(cols, HEATMAP_SIDE))
        )[0, 0]
    return round_significant(plane.to(torch.float64).numpy()).tolist()


def _histogram(a: np.ndarray) -> Histogram | None:
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        return None
    counts, edges = np.histogram(finite, bins=HISTOGRAM_BINS)
    return Histogram.model_construct(
        edges=round_significant(edges).tolist(), counts=counts.tolist()
    )


def summarize(t: torch.Tensor, inline_limit: int, preview: bool = True) -> TensorData:
    """TensorData of a tensor: values up to inline_limit elements, else stats and previews."""
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    shape = list(t.shape)
    dtype = dtype_name(t.dtype)
    numel = t.numel()
    if numel == 0:
        return TensorData.model_construct(
            shape=shape, dtype=dtype, values=t.tolist(), stats=None, heatmap=None, histogram=None
        )
    a = _as_float64(t)
    if numel <= inline_limit:
        values = t.tolist() if not t.is_complex() else a.tolist()
        return TensorData.model_construct(
            shape=shape, dtype=dtype, values=values, stats=_stats(a), heatmap=None, histogram=None
        )
    return TensorData.model_construct(
        shape=shape,
        dtype=dtype,
        values=None,
        stats=_stats(a),
        heatmap=_heatmap(t) if preview else None,
        histogram=_histogram(a.ravel()) if preview else None,
    )


def scalar_of(t: torch.Tensor) -> float | None:
    """The value of a one-element tensor as a float, else None."""
    if t.numel() != 1 or t.is_complex():
        return None
    return float(t.detach().reshape(()).item())
