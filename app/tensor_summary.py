"""Turn a tensor into TensorData: values when small, statistics and previews when large."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import torch

from app.records import maker
from app.rounding import rounded_all
from app.schemas import Stats, TensorData
from app.tensor_previews import (
    REAL_DTYPES,
    Pending,
    Previews,
    all_edges,
    batch_heatmaps,
    batch_histograms,
    float32_range,
    float32_ranges,
    listable,
    listed_counts,
    new_histogram,
    other_layout_planes,
    own_layout_planes,
    tensor_histogram,
)
from app.tensor_summary_blocks import flat_elements, is_dense, listed_stats, raw_stats
from app.value_sample import histogram_values

# records made by the thousand: every field by keyword, nothing checked
stats_record = maker(Stats, positional=True)  # min, max, mean, std
new_tensor_data = maker(TensorData)

STATS_DIGITS = 7


def dtype_name(dtype: torch.dtype) -> str:
    """'float32' for torch.float32."""
    return str(dtype).removeprefix("torch.")


_DTYPE_NAMES = {  # the common ones, looked up without building a string
    d: dtype_name(d)
    for d in (torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.bool)
}


def _as_real_float(t: torch.Tensor) -> torch.Tensor:
    """t itself when float32 or float64, else its magnitudes (complex) or its values as floats."""
    if t.dtype in REAL_DTYPES:
        return t
    if t.is_complex():
        return t.abs()
    return t.to(torch.float32 if t.is_floating_point() else torch.float64)


def _all_rounded_stats(rows: Sequence[list[float]]) -> list[Stats]:
    """Stats of [min, max, mean, std] rows, each rounded to STATS_DIGITS significant digits."""
    rounded = iter(rounded_all([v for row in rows for v in row], STATS_DIGITS))
    # min, max, mean and std taken four at a time, in the order Stats declares them
    return list(
        itertools.starmap(stats_record, zip(rounded, rounded, rounded, rounded, strict=True))
    )


def batch_stats(tensors: Sequence[torch.Tensor]) -> list[Stats]:
    """Population min, max, mean and std of each non-empty tensor, a few kernels per group.

    Tensors of one device, precision and size are stacked into one matrix and reduced along its
    rows, and small ones of rare shapes are joined into one vector, so the number of kernel
    launches grows with the number of common sizes, not tensors.
    """
    return _all_rounded_stats(raw_stats([_as_real_float(t.detach()) for t in tensors]))


def _complete(pending: Sequence[Pending]) -> None:
    """Fill stats, and previews where asked for, of TensorData taken from these tensors.

    Tensors with the same values key share one Stats and one histogram, those that are also
    laid out alike one heatmap: the recorder meets a weight as a saved tensor, an input and a
    value, and a gradient as one step's output and the next one's input.
    """
    first: dict[tuple[Any, ...], int] = {}
    distinct: list[torch.Tensor] = []
    values_of: list[Any] = []  # the values of each distinct tensor shown inline, else None
    which: list[int] = []
    shown: list[int] = []
    origin: list[int] = []  # the pending index of each distinct tensor
    elements = 0
    for index, (t, data, preview, key) in enumerate(pending):
        j = first.get(key)
        if j is None:
            j = first[key] = len(distinct)
            distinct.append(_as_real_float(t))
            origin.append(index)
            values_of.append(data.values)
            elements += t.numel()
        which.append(j)
        if preview and data.values is None:
            shown.append(index)
    plane_of: dict[tuple[Any, ...], list[int]] = {}
    for i in shown:
        t = pending[i][0]
        if t.dim() >= 2:
            plane_of.setdefault(_layout_key(t, pending[i][3]), []).append(i)
    planes = list(plane_of.values())
    # a few values are summarised in Python and numpy; many, by torch in batches of one shape
    # (the values read one tensor at a time would cost more than the calls saved)
    if elements <= LISTED_UP_TO:
        read = [_read(t, values) for t, values in zip(distinct, values_of, strict=True)]
        distinct_rows = _distinct_stats(distinct, read)
        fused = Previews(distinct, [], {}, {})
    else:
        read = [None] * len(distinct)
        # previews of stacked tensors are taken from their stack while it is at hand
        own = own_layout_planes(pending, planes, which, origin)
        others = other_layout_planes(pending, planes, which, origin, own)
        fused = Previews(distinct, [which[i] for i in shown], own, others)
        distinct_rows = raw_stats(distinct, fused if shown else None)
    distinct_stats = _all_rounded_stats(distinct_rows)
    for (_, data, _, _), j in zip(pending, which, strict=True):
        data.__dict__["stats"] = distinct_stats[j]  # one Stats for every view of the same values
    if not shown:
        return
    heatmap_of = [fused.heatmap(which[same[0]], same) for same in planes]
    rest_planes = [same for same, heatmap in zip(planes, heatmap_of, strict=True) if not heatmap]
    heatmaps = iter(batch_heatmaps([_as_real_float(pending[same[0]][0]) for same in rest_planes]))
    for same, heatmap in zip(planes, heatmap_of, strict=True):
        heatmap = heatmap or next(heatmaps)
        for i in same:
            pending[i][1].__dict__["heatmap"] = heatmap
    histogram_of: dict[int, list[int]] = {}
    for i in shown:
        histogram_of.setdefault(which[i], []).append(i)
    # all values are finite exactly when min and max are: those share one batched histogram
    finite = [j for j in histogram_of if all(map(math.isfinite, distinct_rows[j][:2]))]
    # the values of a few elements, already read into Python, are counted without torch
    # (ranges too wide or narrow for float32 steps go to torch: values past float32's range
    # become integers as the platform converts them)
    listed: dict[int, tuple[list[float], tuple[float, float]]] = {}
    for j in finite:
        values = read[j]
        if values is None or distinct[j].dtype not in REAL_DTYPES:
            continue
        bounds = float32_range(distinct_rows[j])
        if listable(bounds):
            listed[j] = values, bounds
    counted_of = dict(fused.counts)
    counted_of.update((j, listed_counts(values, *bounds)) for j, (values, bounds) in listed.items())
    rest = [j for j in finite if j not in counted_of]
    ranges = float32_ranges([distinct_rows[j] for j in rest])
    # counts do not depend on the order of the values: read in memory order, a transposed
    # gradient is copied straight through
    counted = [
        (fused.samples[j], True) if j in fused.samples else histogram_values(flat_elements(x))
        for j, x in ((j, distinct[j]) for j in rest)
    ]
    histograms = batch_histograms(
        [values for values, _ in counted], ranges, [sampled for _, sampled in counted]
    )
    by_values = dict(zip(rest, histograms, strict=True))
    made = list(counted_of)
    edges_of = all_edges(float32_ranges([distinct_rows[j] for j in made]))
    for j, edges in zip(made, edges_of, strict=True):
        by_values[j] = new_histogram(edges=edges, counts=counted_of[j], sample=None)
    for j, same in histogram_of.items():
        histogram = by_values[j] if j in by_values else tensor_histogram(distinct[j])
        for i in same:
            pending[i][1].__dict__["histogram"] = histogram


def _distinct_stats(
    distinct: Sequence[torch.Tensor], read: Sequence[list[float] | None]
) -> list[list[float]]:
    """[min, max, mean, std] of each tensor: from its values where they were read into Python
    (a small tensor, where a torch call costs more than the arithmetic), else by torch."""
    listed = {j: values for j, values in enumerate(read) if values is not None}
    if not listed:
        return raw_stats(distinct)
    rows: list[list[float]] = [[]] * len(distinct)
    for j, row in zip(listed, listed_stats(list(listed.values())), strict=True):
        rows[j] = row
    rest = [j for j, values in enumerate(read) if values is None]
    for j, row in zip(rest, raw_stats([distinct[j] for j in rest]), strict=True):
        rows[j] = row
    return rows


# a flush of up to this many values (of distinct tensors) reads them into Python, where a few
# calls of numpy (or none) replace dozens of torch's: a tiny graph's whole recording
LISTED_UP_TO = 2048
# in such a flush, CPU tensors up to this size not shown inline are read too
READ_UP_TO = 256


def _read(t: torch.Tensor, values: Any) -> list[float] | None:
    """The values of real tensor t (values: those shown inline, or None) in one flat list,
    where they were read or are few, else None."""
    if values is not None:
        return _flat(values, t.dim())
    if t.numel() <= READ_UP_TO and t.device.type == "cpu":
        return flat_elements(t).tolist()
    return None


def _flat(values: Any, dim: int) -> list[float]:
    """The elements of a tensor's nested list of values, in order, in one list."""
    if dim == 0:
        return [values]
    if dim == 1:
        return values
    if dim == 2:
        return [v for row in values for v in row]
    return [v for part in values for v in _flat(part, dim - 1)]


def _values_key(x: torch.Tensor) -> tuple[Any, ...]:
    """Equal for two tensors that hold the same values, in any order.

    Views that fill the same block of memory (a gradient and its transpose or reshape, which
    backward steps pass on) hold the same values in another order, so they share statistics.
    """
    try:
        if x.is_contiguous() or is_dense(x):
            return (x.data_ptr(), x.numel(), x.dtype, x.device)
    except RuntimeError:  # no strides (sparse): never shared
        pass
    return (id(x),)


def _layout_key(x: torch.Tensor, values_key: tuple[Any, ...]) -> tuple[Any, ...]:
    """Equal for two tensors with the same values key that also hold them in the same order."""
    return (*values_key, x.shape, x.stride()) if len(values_key) > 1 else values_key


def summarize(t: torch.Tensor, inline_limit: int, preview: bool = True) -> TensorData:
    """TensorData of a tensor: values up to inline_limit elements, else stats and previews."""
    batch = SummaryBatch(inline_limit)
    data = batch.add(t, preview)
    batch.flush()
    return data


class SummaryBatch:
    """TensorData whose statistics and previews are computed together when flushed.

    Shape, dtype and inline values are taken at once; stats and previews wait for the flush, so
    the caller must flush before anything can change the values of a pending tensor. The bound
    on pending elements only limits what the batch keeps alive: the work of a flush goes through
    fixed scratch blocks, and the recorder holds most pending tensors anyway (node values, the
    gradients of the pass it is filling), so a wide bound costs little memory and lets the
    repeats of a whole backward pass share their summaries.
    """

    def __init__(self, inline_limit: int, max_pending_elements: int = 1 << 25) -> None:
        self.inline_limit = inline_limit
        self.max_pending_elements = max_pending_elements
        self._pending: list[Pending] = []
        self._keys: set[tuple[Any, ...]] = set()
        self._elements = 0  # of distinct values: a view of a pending tensor adds none

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, t: torch.Tensor, preview: bool = True) -> TensorData:
        """TensorData of t; its stats and previews are filled by the next flush."""
        # kept as given, not detached (a new tensor per record): the flush reads it without
        # recording gradients
        numel = t.numel()
        values = None
        if numel <= self.inline_limit:
            values = t.detach().abs().tolist() if t.is_complex() else t.tolist()
        data = new_tensor_data(
            shape=list(t.shape),
            dtype=_DTYPE_NAMES.get(t.dtype) or dtype_name(t.dtype),
            values=values,
            stats=None,
            heatmap=None,
            histogram=None,
        )
        if not numel:
            return data  # nothing to take statistics of
        key = _values_key(t)
        self._pending.append((t, data, preview, key))
        if key not in self._keys:
            self._keys.add(key)
            self._elements += numel
            if self._elements >= self.max_pending_elements:
                self.flush()
        return data

    def flush(self) -> None:
        """Fill the stats and previews of every pending TensorData."""
        if self._pending:
            pending, self._pending, self._keys, self._elements = self._pending, [], set(), 0
            with torch.no_grad():
                _complete(pending)


def scalar_of(t: torch.Tensor) -> float | None:
    """The value of a one-element tensor as a float, else None."""
    if t.numel() != 1 or t.is_complex():
        return None
    return float(t.detach().reshape(()).item())
