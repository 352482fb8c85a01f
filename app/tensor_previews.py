"""Heatmaps and histograms of tensor values, alone or from the blocks their statistics read."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from app.records import maker
from app.rounding import round_tensor, rounded_all
from app.schemas import Histogram, TensorData
from app.tensor_summary_blocks import (
    BLOCK_ELEMENTS,
    SCRATCH_FROM,
    batches,
    flat_elements,
    is_dense,
    scratch_block,
    stacked,
)
from app.value_sample import HISTOGRAM_SAMPLE, histogram_values, sample_positions

new_histogram = maker(Histogram)  # made by the thousand: every field by keyword, nothing checked

HEATMAP_SIDE = 16
HISTOGRAM_BINS = 16
PREVIEW_DIGITS = 4
# planes from this size whose sides split evenly into the heatmap's cells are averaged by one
# sum over a view, without a copy (adaptive pooling walks every window element by element)
HEATMAP_VIEW_FROM = 1 << 16
REAL_DTYPES = (torch.float32, torch.float64)  # read as they are, every other dtype converted

Pending = tuple[torch.Tensor, TensorData, bool, tuple[Any, ...]]  # tensor, data, preview, key


def batch_heatmaps(tensors: Sequence[torch.Tensor]) -> list[list[list[float]]]:
    """Each real tensor of two or more dimensions as a plane of at most 16×16 averaged cells
    (its first dimension down, the rest flattened across)."""
    maps: list[list[list[float]]] = [[]] * len(tensors)
    for members, batch in batches(tensors):
        packed = batch == "packed"
        first = tensors[members[0]]
        if len(members) == 1 and _splits_evenly(first):
            cells = _heatmap_by_view(first)[None]
            rounded = round_tensor(cells.to(torch.float64), PREVIEW_DIGITS).tolist()
        else:
            if packed:
                stack = stacked([tensors[i] for i in members], torch.float32)
            else:  # bigger than a block: pooled where it lies
                stack = first.to(torch.float32)[None]
            rounded = pooled_heatmaps(stack.reshape(len(members), first.shape[0], -1))
        for i, cell in zip(members, rounded, strict=True):
            maps[i] = cell
    return maps


def pooled_heatmaps(stack: torch.Tensor) -> list[list[list[float]]]:
    """The heatmap of each float32 plane of a (planes, rows, columns) stack, averaged by
    adaptive pooling in float32 and rounded."""
    rows, cols = stack.shape[1], stack.shape[2]
    if rows > HEATMAP_SIDE or cols > HEATMAP_SIDE:
        size = (min(rows, HEATMAP_SIDE), min(cols, HEATMAP_SIDE))
        stack = F.adaptive_avg_pool2d(stack[:, None], size)[:, 0]
    return round_tensor(stack.to(torch.float64), PREVIEW_DIGITS).tolist()


def _cells_along(side: int) -> int | None:
    """How many heatmap cells a side of this length makes, when each takes an equal share."""
    if side <= HEATMAP_SIDE:
        return side
    return HEATMAP_SIDE if side % HEATMAP_SIDE == 0 else None


def _splits_evenly(x: torch.Tensor) -> bool:
    """Whether x is a big plane whose cells each average an equal, disjoint window."""
    if x.numel() < HEATMAP_VIEW_FROM or x.device.type != "cpu":
        return False
    return (
        _cells_along(x.shape[0]) is not None and _cells_along(x.numel() // x.shape[0]) is not None
    )


def _run_of(x: torch.Tensor) -> int:
    """The elements of one row of a plane that split evenly that fall in one cell, side by
    side."""
    across = _cells_along(x.numel() // x.shape[0])
    assert across is not None
    return x.numel() // x.shape[0] // across


def _heatmap_by_view(x: torch.Tensor) -> torch.Tensor:
    """The heatmap cells of a plane whose sides split evenly: the averages adaptive pooling
    gives, each window summed in double precision (the cells of a gradient can be a
    hundred-millionth of its values, which float32 sums would drown in rounding)."""
    return _cells_of_run_sums(x, _run_sums(x.reshape(-1), _run_of(x)))


def _cells_of_run_sums(x: torch.Tensor, sums: torch.Tensor) -> torch.Tensor:
    """The heatmap cells of a plane that splits evenly, from the double sums of its runs."""
    rows = x.shape[0]
    down, across = _cells_along(rows), _cells_along(x.numel() // rows)
    assert down is not None and across is not None
    run = _run_of(x)
    cells = sums.view(down, rows // down, across).sum(dim=1)
    return cells.div_((rows // down) * run)


def _run_sums(flat: torch.Tensor, run: int) -> torch.Tensor:
    """Sums in double precision of consecutive runs of `run` elements of a flat tensor, one
    block at a time."""
    runs = flat.numel() // run
    sums = torch.empty(runs, dtype=torch.float64)
    scratch = scratch_block(torch.float64, min(flat.numel(), BLOCK_ELEMENTS))
    if run > BLOCK_ELEMENTS:
        for index in range(runs):
            parts = flat[index * run : (index + 1) * run].split(BLOCK_ELEMENTS)
            sums[index] = sum(float(scratch[: p.numel()].copy_(p).sum()) for p in parts)
        return sums
    per = BLOCK_ELEMENTS // run
    for start in range(0, runs, per):
        count = min(per, runs - start)
        block = scratch[: count * run].copy_(flat[start * run : (start + count) * run])
        torch.sum(block.view(count, run), dim=1, out=sums[start : start + count])
    return sums


def all_edges(ranges: Sequence[tuple[float, float]]) -> list[list[float]]:
    """The 17 bin edges from low to high of each range, all rounded by one formatting call."""
    if not ranges:
        return []
    # low + i * step in double precision, as each bin's edge is defined
    raw = []
    for low, high in ranges:
        step = (high - low) / HISTOGRAM_BINS
        raw.extend([low + i * step for i in range(HISTOGRAM_BINS + 1)])
    # format() rounds as round_significant does, non-finite values included
    flat = rounded_all(raw, PREVIEW_DIGITS)
    width = HISTOGRAM_BINS + 1
    return [flat[i : i + width] for i in range(0, len(flat), width)]


def batch_histograms(
    tensors: Sequence[torch.Tensor],
    ranges: Sequence[tuple[float, float]],
    sampled: Sequence[bool] = (),
) -> list[Histogram]:
    """Histograms (16 bins from min to max) of real tensors whose values are all finite;
    sampled says which tensors are the HISTOGRAM_SAMPLE values of a bigger one (none when
    left out)."""
    counts_of: list[list[int]] = [[]] * len(tensors)
    for members, batch in batches(tensors):
        chosen = [ranges[i] for i in members]
        if batch == "packed":
            matrix = stacked([tensors[i] for i in members], torch.float32)
            found = row_counts(matrix.view(len(members), -1), chosen)
        else:
            found = row_counts(flat_elements(tensors[members[0]])[None], chosen, owned=False)
        for i, row in zip(members, found, strict=True):
            counts_of[i] = row
    samples = [HISTOGRAM_SAMPLE if s else None for s in sampled] or [None] * len(tensors)
    return [
        new_histogram(edges=edges, counts=counts, sample=sample)
        for edges, counts, sample in zip(all_edges(ranges), counts_of, samples, strict=True)
    ]


def row_counts(
    matrix: torch.Tensor, ranges: Sequence[tuple[float, float]], owned: bool = True
) -> list[list[int]]:
    """The 16 bin counts of each row of a matrix over its range (finite float32 bounds of the
    row's values), as torch.histc counts them; the matrix is scaled in place where owned (a
    float32 copy), else read a block at a time."""
    # the few bounds in numpy's float32 arithmetic, which is IEEE's as torch's is
    low, high = np.array(ranges, dtype=np.float32).T
    flat_range = low == high  # torch.histc widens an empty range by one on each side
    one = np.float32(1)
    low, high = np.where(flat_range, low - one, low), np.where(flat_range, high + one, high)
    width = high - low
    if all(_step_is_exact(*bounds) for bounds in ranges):
        # (x - low) * 16 / width == (x - low) / (width / 16) in float32 where neither the
        # product nor the quotient width / 16 leaves the normal range: one pass fewer
        width = width / np.float32(HISTOGRAM_BINS)
        prescale = False
    else:
        prescale = True
    columns = torch.from_numpy(np.stack([low, width], axis=1)).to(matrix.device)
    low_column, width_column = columns[:, :1], columns[:, 1:]
    if owned:
        counts = _bin_counts(matrix, low_column, width_column, prescale, owned=True)
    else:
        counts = sum(
            _bin_counts(part, low_column, width_column, prescale, owned=False)
            for part in matrix.split(BLOCK_ELEMENTS, dim=1)
        )
    return counts.reshape(len(ranges), -1).tolist()


def listed_counts(values: list[float], low: float, high: float) -> list[int]:
    """The 16 bin counts that batch_histograms gives for a real tensor of these values (all
    finite, from low to high, each bound a float32, a range that listable accepts), by numpy's
    float32 arithmetic, which is IEEE's as torch's is: worth it for a few values, where each
    torch call costs more than the counting."""
    x = np.array(values, dtype=np.float32)
    bottom, top = np.float32(low), np.float32(high)
    if bottom == top:  # torch.histc widens an empty range by one on each side
        bottom, top = bottom - np.float32(1), top + np.float32(1)
    width = top - bottom
    if _step_is_exact(low, high):
        scaled = (x - bottom) / (width / np.float32(HISTOGRAM_BINS))
    else:
        scaled = (x - bottom) * np.float32(HISTOGRAM_BINS) / width
    bins = scaled.astype(np.int32)
    # clamped as torch clamps them (np.clip costs more calls than the two ufuncs)
    np.minimum(np.maximum(bins, 0, out=bins), HISTOGRAM_BINS - 1, out=bins)
    return np.bincount(bins, minlength=HISTOGRAM_BINS).tolist()


def listable(bounds: tuple[float, float]) -> bool:
    """Whether listed_counts scales values of this range without leaving float32's range."""
    return bounds[0] == bounds[1] or _step_is_exact(*bounds)


def _step_is_exact(low: float, high: float) -> bool:
    """Whether the float32 width of this range divided by the number of bins is exact and no
    scaled value can overflow (the range's float32 width is within a rounding of high - low)."""
    return 2.0**-118 <= high - low <= 2.0**120


def _bin_counts(
    matrix: torch.Tensor, low: torch.Tensor, width: torch.Tensor, prescale: bool, owned: bool
) -> torch.Tensor:
    """Counts of each row's values in 16 bins from low (one per row), the first row's 16 first;
    the values are scaled as torch.histc scales them, (x - low) * 16 / width in float32 (width
    already divided by 16 unless prescale), in place where the matrix is owned (a float32
    copy), else in a scratch block."""
    rows, numel = matrix.shape
    scratch = matrix.device.type == "cpu" and rows * numel >= SCRATCH_FROM
    if owned:
        scaled = matrix.sub_(low)
    elif not scratch:
        scaled = matrix.to(torch.float32, copy=True).sub_(low)
    else:
        out = scratch_block(torch.float32, rows * numel).view(rows, numel)
        if matrix.dtype == torch.float32:
            scaled = torch.sub(matrix, low, out=out)
        else:
            scaled = out.copy_(matrix).sub_(low)
    if prescale:
        scaled.mul_(HISTOGRAM_BINS)
    scaled.div_(width)
    # bin numbers fit in 32 bits, which bincount counts several times faster than 64
    if scratch:
        bins = scratch_block(torch.int32, rows * numel).view(rows, numel).copy_(scaled)
    else:
        bins = scaled.int()
    bins.clamp_(0, HISTOGRAM_BINS - 1)
    if rows > 1:
        bins += (
            torch.arange(rows, device=matrix.device, dtype=torch.int32)[:, None] * HISTOGRAM_BINS
        )
    return torch.bincount(bins.reshape(-1), minlength=rows * HISTOGRAM_BINS)


def tensor_histogram(x: torch.Tensor) -> Histogram | None:
    """The histogram of a tensor's finite values alone (None when it has none), by torch.histc."""
    finite = x if bool(torch.isfinite(x).all()) else x[torch.isfinite(x)]
    if finite.numel() == 0:
        return None
    finite = finite.to(torch.float32)
    low, high = (float(v) for v in torch.aminmax(finite))
    counted, sampled = histogram_values(finite.reshape(-1))
    counts = torch.histc(counted, bins=HISTOGRAM_BINS, min=low, max=high)
    return new_histogram(
        edges=all_edges([(low, high)])[0],
        counts=[int(c) for c in counts.tolist()],
        sample=HISTOGRAM_SAMPLE if sampled else None,
    )


def float32_range(row: list[float]) -> tuple[float, float]:
    """The min and max of a [min, max, ...] row of statistics as float32 bounds."""
    return float(np.float32(row[0])), float(np.float32(row[1]))


def float32_ranges(rows: Sequence[list[float]]) -> list[tuple[float, float]]:
    """float32_range of every row, converted by one numpy call."""
    if not rows:
        return []
    with np.errstate(over="ignore"):  # past float32's range: infinite, as np.float32 gives
        bounds = np.array([row[:2] for row in rows], dtype=np.float64).astype(np.float32)
    return list(map(tuple, bounds.astype(np.float64).tolist()))


def _contiguous_strides(shape: Sequence[int]) -> tuple[int, ...]:
    """The strides of a contiguous tensor of this shape."""
    strides = []
    step = 1
    for size in reversed(shape):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))


def own_layout_planes(
    pending: Sequence[Pending], planes: Sequence[list[int]], which: Sequence[int], origin: list[int]
) -> dict[int, list[int]]:
    """The planes laid out as the first tensor of their values (the one whose values are
    stacked), by the index of those values."""
    own: dict[int, list[int]] = {}
    for same in planes:
        j = which[same[0]]
        if j in own:
            continue
        t = pending[same[0]][0]
        first = pending[origin[j]][0]
        if same[0] == origin[j] or (first.shape == t.shape and first.stride() == t.stride()):
            own[j] = same
    return own


def other_layout_planes(
    pending: Sequence[Pending],
    planes: Sequence[list[int]],
    which: Sequence[int],
    origin: list[int],
    own: dict[int, list[int]],
) -> dict[int, list[tuple[list[int], torch.Tensor]]]:
    """The planes that lay out the same block of memory as the first tensor of their values
    but otherwise (a transposed weight), with their tensor, by the index of those values: their
    heatmaps are taken from the first tensor's stacked values, rearranged."""
    others: dict[int, list[tuple[list[int], torch.Tensor]]] = {}
    for same in planes:
        j = which[same[0]]
        t, _, _, key = pending[same[0]]
        first = pending[origin[j]][0]
        if own.get(j) is same or len(key) == 1 or t.numel() >= HEATMAP_VIEW_FROM:
            continue  # planes averaged by view depend on their batch: left to batch_heatmaps
        if (
            t.dtype in REAL_DTYPES
            and first.dtype in REAL_DTYPES
            and is_dense(t)
            and is_dense(first)
        ):
            others.setdefault(j, []).append((same, t))
    return others


class Previews:
    """Heatmaps and histogram counts of stacked tensors, taken from each stack of raw_stats
    while it is at hand: every tensor shown is read once for its statistics and previews."""

    def __init__(
        self,
        distinct: Sequence[torch.Tensor],
        shown: Sequence[int],
        planes: dict[int, list[int]],
        others: dict[int, list[tuple[list[int], torch.Tensor]]],
    ) -> None:
        self.distinct = distinct
        self.shown = set(shown)
        self.planes = planes
        self.others = others
        self.other_maps: dict[int, list[list[float]]] = {}  # by the id of the plane
        self.heatmaps: dict[int, list[list[float]]] = {}
        self.counts: dict[int, list[int]] = {}
        self.run_sums: dict[int, torch.Tensor] = {}  # of big planes averaged by view
        self.samples: dict[int, torch.Tensor] = {}  # the values a big histogram counts

    def heatmap(self, j: int, plane: list[int]) -> list[list[float]] | None:
        """The heatmap taken of this plane of values j while they were read, if any."""
        if self.planes.get(j) is not plane:
            return self.other_maps.get(id(plane))
        sums = self.run_sums.get(j)
        if sums is not None:
            cells = _cells_of_run_sums(self.distinct[j], sums)
            self.heatmaps[j] = round_tensor(cells[None], PREVIEW_DIGITS).tolist()[0]
            del self.run_sums[j]
        return self.heatmaps.get(j)

    def wanted(self, index: int) -> tuple[int | None, torch.Tensor | None]:
        """The runs of a big plane averaged by view, and the values of its histogram's sample."""
        if index not in self.shown:
            return None, None
        x = self.distinct[index]
        run = None
        if index in self.planes and x.is_contiguous() and _splits_evenly(x):
            run = _run_of(x)
            if run > BLOCK_ELEMENTS:
                run = None
        positions = None
        if x.numel() > HISTOGRAM_SAMPLE and x.device.type == "cpu":
            positions = sample_positions(x.numel(), x.device)
        return run, positions

    def read(self, index: int, sums: torch.Tensor | None, values: torch.Tensor | None) -> None:
        """Keep what was taken from a big tensor as it was read."""
        if sums is not None:
            self.run_sums[index] = sums
        if values is not None:
            self.samples[index] = values

    def block(
        self, members: list[int], matrix: torch.Tensor, low: list[float], high: list[float]
    ) -> None:
        """Previews of the tensors of one block of raw_stats (one shape, a row each in its
        logical order); the matrix may be changed."""
        first = self.distinct[members[0]]
        if first.numel() > HISTOGRAM_SAMPLE or first.device.type != "cpu":
            return  # a sample of its values is counted, in memory order
        wanted = [r for r, j in enumerate(members) if j in self.shown]
        if not wanted:
            return
        # planes big enough for their own averaging by view are left to batch_heatmaps
        if first.dim() >= 2 and first.numel() < HEATMAP_VIEW_FROM:
            heat = [r for r in wanted if members[r] in self.planes]
            if heat:
                self._heatmaps(members, heat, matrix, first.shape[0])
            layouts: dict[tuple[Any, ...], list[tuple[int, list[int]]]] = {}
            for r in wanted:
                x = self.distinct[members[r]]
                for plane, t in self.others.get(members[r], ()):
                    layouts.setdefault((x.stride(), t.shape, t.stride()), []).append((r, plane))
            for (stride, shape, laid), rows in layouts.items():
                self._rearranged_heatmaps(matrix, rows, first.shape, stride, shape, laid)
        self._counts(members, wanted, matrix, low, high)

    def _heatmaps(
        self, members: list[int], heat: list[int], matrix: torch.Tensor, rows: int
    ) -> None:
        """Heatmaps of these rows of the block (tensors of one shape, in logical order)."""
        planes = matrix if len(heat) == len(members) else matrix[heat]
        maps = pooled_heatmaps(planes.to(torch.float32).reshape(len(heat), rows, -1))
        for r, heatmap in zip(heat, maps, strict=True):
            self.heatmaps[members[r]] = heatmap

    def _rearranged_heatmaps(
        self,
        matrix: torch.Tensor,
        rows: list[tuple[int, list[int]]],
        shape: torch.Size,
        stride: tuple[int, ...],
        other_shape: torch.Size,
        other_stride: tuple[int, ...],
    ) -> None:
        """Heatmaps of planes that lay out the memory of these rows' tensors (of this shape and
        stride, stacked in logical order) with another shape and stride: each row written back
        in memory order, then read as the plane lays it out."""
        chosen = [r for r, _ in rows]
        picked = matrix if len(chosen) == len(matrix) else matrix[chosen]
        picked = picked.to(torch.float32)
        count, numel = picked.shape
        plane_shape, plane_stride = (count, *other_shape), (numel, *other_stride)
        if stride == _contiguous_strides(shape):  # the rows are in memory order already
            planes = picked.as_strided(plane_shape, plane_stride)
        else:
            memory = torch.empty_like(picked)
            memory.as_strided((count, *shape), (numel, *stride)).copy_(picked.view(count, *shape))
            planes = memory.as_strided(plane_shape, plane_stride)
        maps = pooled_heatmaps(planes.reshape(count, other_shape[0], -1))
        for (_, plane), heatmap in zip(rows, maps, strict=True):
            self.other_maps[id(plane)] = heatmap

    def _counts(
        self,
        members: list[int],
        wanted: list[int],
        matrix: torch.Tensor,
        lows: list[float],
        highs: list[float],
    ) -> None:
        kept = [r for r in wanted if math.isfinite(lows[r]) and math.isfinite(highs[r])]
        if not kept:
            return
        values = matrix if len(kept) == len(members) else matrix[kept]
        if values.dtype != torch.float32:
            values = values.to(torch.float32)
        ranges = float32_ranges([[lows[r], highs[r]] for r in kept])
        for r, counts in zip(kept, row_counts(values, ranges), strict=True):
            self.counts[members[r]] = counts
