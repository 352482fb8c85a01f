"""Turn a tensor into TensorData: values when small, statistics and previews when large."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from app.records import maker
from app.schemas import Histogram, Stats, TensorData

# records made by the thousand: every field by keyword, nothing checked
new_stats = maker(Stats)
new_histogram = maker(Histogram)
new_tensor_data = maker(TensorData)

HEATMAP_SIDE = 16
HISTOGRAM_BINS = 16
PREVIEW_DIGITS = 4
STATS_DIGITS = 7
# the unit of work on the CPU: 1 MiB of doubles, small enough to stay in the cache, reused
BLOCK_ELEMENTS = 1 << 17
# batches of work from this many elements go through the scratch blocks
SCRATCH_FROM = 1 << 12
# planes from this size whose sides split evenly into the heatmap's cells are averaged by one
# sum over a view, without a copy (adaptive pooling walks every window element by element)
HEATMAP_VIEW_FROM = 1 << 16


def dtype_name(dtype: torch.dtype) -> str:
    """'float32' for torch.float32."""
    return str(dtype).removeprefix("torch.")


_DTYPE_NAMES = {  # the common ones, looked up without building a string
    d: dtype_name(d)
    for d in (torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.bool)
}


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


_REAL = (torch.float32, torch.float64)


def _as_real_float(t: torch.Tensor) -> torch.Tensor:
    if t.is_complex():
        return t.abs()
    if t.dtype in (torch.float32, torch.float64):
        return t
    return t.to(torch.float32 if t.is_floating_point() else torch.float64)


def row_bounds(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """torch.aminmax(matrix, dim=1), computed by amin and amax where that gives the same.

    On the CPU amin and amax are many times faster than aminmax; they find the same values but
    may disagree on the sign of a zero, so rows with a zero bound are taken from aminmax.
    """
    if matrix.device.type != "cpu":
        return torch.aminmax(matrix, dim=1)
    low, high = matrix.amin(dim=1), matrix.amax(dim=1)
    zero = ((low == 0) | (high == 0)).nonzero().squeeze(1)
    if len(zero):
        low[zero], high[zero] = torch.aminmax(matrix[zero], dim=1)
    return low, high


Layout = tuple[torch.device, torch.Size]

_scratch = threading.local()


def _scratch_block(dtype: torch.dtype, elements: int) -> torch.Tensor:
    """The first `elements` (at most BLOCK_ELEMENTS) of this thread's reusable CPU buffer of
    dtype, which grows by powers of two up to a block.

    A fresh temporary as big as a tensor costs a page fault per 4 KiB, more than the arithmetic
    done in it; one buffer reused for every block stays mapped and in the cache, and a thread
    that only ever summarises small tensors keeps a small one.
    """
    buffers: dict[torch.dtype, torch.Tensor] | None = getattr(_scratch, "buffers", None)
    if buffers is None:
        buffers = _scratch.buffers = {}
    block = buffers.get(dtype)
    if block is None or len(block) < elements:
        size = min(BLOCK_ELEMENTS, 1 << max(elements - 1, 1023).bit_length())
        block = buffers[dtype] = torch.empty(size, dtype=dtype)
    return block[:elements]


def _by_layout(tensors: Sequence[torch.Tensor]) -> dict[Layout, list[int]]:
    """Indexes of the tensors, grouped by device and shape: each group stacks into one."""
    groups: dict[Layout, list[int]] = {}
    for index, x in enumerate(tensors):
        groups.setdefault((x.device, x.shape), []).append(index)
    return groups


Batch = Literal["alone", "packed", "joined"]

# small tensors of shapes met fewer times than this are summarised together, concatenated into
# one vector: a handful of calls for all of them, where stacking costs a dozen calls per shape
CONCAT_UP_TO = 1024
STACKED_FROM = 32


def _batches(
    tensors: Sequence[torch.Tensor], join_small: bool = False
) -> Iterator[tuple[list[int], Batch]]:
    """Indexes of tensors summarised together, and how: "packed" (one device and shape, they
    fit one block stacked), "alone" (a tensor bigger than a block) or, where join_small,
    "joined" (small CPU tensors of shapes met a few times, of one dtype and all scalars or
    none, at most a block of them one after another)."""
    joined: dict[tuple[torch.dtype, bool], tuple[list[int], int]] = {}
    for (device, shape), members in _by_layout(tensors).items():
        numel = shape.numel()
        is_cpu = device.type == "cpu"
        if join_small and is_cpu and numel <= CONCAT_UP_TO and len(members) < STACKED_FROM:
            for i in members:
                key = (tensors[i].dtype, not shape)  # torch.cat joins one dtype fastest
                chunk, elements = joined.get(key) or ([], 0)
                if elements + numel > BLOCK_ELEMENTS:
                    yield chunk, "joined"
                    chunk, elements = [], 0
                chunk.append(i)
                joined[key] = (chunk, elements + numel)
            continue
        if is_cpu and numel > BLOCK_ELEMENTS:
            for i in members:
                yield [i], "alone"
            continue
        per = max(1, BLOCK_ELEMENTS // max(numel, 1)) if is_cpu else len(members)
        for start in range(0, len(members), per):
            yield members[start : start + per], "packed"
    for chunk, _ in joined.values():
        yield chunk, "joined"


def _stacked(tensors: Sequence[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    """The tensors (one device and shape) stacked and converted to dtype, a copy the caller may
    change: a big one on the CPU goes into this thread's scratch block, so it lasts until the
    block is used again (small temporaries cost less than the calls that would reuse one)."""
    first = tensors[0]
    elements = len(tensors) * first.numel()
    if first.device.type != "cpu" or elements < SCRATCH_FROM:
        return torch.stack(list(tensors)).to(dtype)
    out = _scratch_block(dtype, elements).view(len(tensors), *first.shape)
    if all(t.dtype == dtype for t in tensors):
        return torch.stack(list(tensors), out=out)
    if all(t.dtype == first.dtype for t in tensors):
        # stack converts element by element: stacked as they are, then converted at once
        staged = _scratch_block(first.dtype, elements).view(len(tensors), *first.shape)
        return out.copy_(torch.stack(list(tensors), out=staged))
    for row, t in zip(out.unbind(), tensors, strict=True):
        row.copy_(t)
    return out


def _flat_values(x: torch.Tensor) -> torch.Tensor:
    """x's elements in one dimension, in some order (statistics and histograms do not depend
    on it), without a copy where they fill one block of memory."""
    if x.is_contiguous():
        return x.view(-1)
    if _is_dense(x):
        return x.as_strided((x.numel(),), (1,))
    return x.reshape(-1)


def _block_stats(matrix: torch.Tensor) -> torch.Tensor:
    """[min, max, mean, std] of each row of a double matrix, which is centred in place."""
    low, high = row_bounds(matrix)
    # two passes in double precision, centred in place
    mean = matrix.mean(dim=1)
    std = matrix.sub_(mean[:, None]).square_().mean(dim=1).sqrt_()
    return torch.stack([low, high, mean, std], dim=1)


def _stats_by_blocks(x: torch.Tensor) -> list[float]:
    """[min, max, mean, std] of a tensor bigger than a block: min and max over the tensor as it
    lies, mean and centred sum of squares one block at a time in double precision, pooled
    (Chan, Golub and LeVeque)."""
    flat = _flat_values(x)
    scratch = _scratch_block(torch.float64, BLOCK_ELEMENTS)
    parts = flat.split(BLOCK_ELEMENTS)
    means = torch.empty(len(parts), dtype=torch.float64)
    squares = torch.empty(len(parts), dtype=torch.float64)
    for index, part in enumerate(parts):
        block = scratch[: part.numel()].copy_(part)
        torch.mean(block, dim=0, out=means[index])
        # a dot product sums the squares without writing them back
        torch.dot(block.sub_(means[index]), block, out=squares[index])
    counts = torch.tensor([part.numel() for part in parts], dtype=torch.float64)
    mean = (counts * means).sum() / flat.numel()
    total = squares.sum() + (counts * (means - mean).square()).sum()
    # min and max need no double precision: read once, vectorised, without a copy
    low, high = flat.amin(), flat.amax()
    if low == 0 or high == 0:  # the sign of a zero bound as torch.aminmax gives it
        low, high = torch.aminmax(flat)
    return [float(low), float(high), float(mean), math.sqrt(float(total) / flat.numel())]


def _raw_stats(xs: Sequence[torch.Tensor]) -> list[list[float]]:
    """[min, max, mean, std] of each real tensor, reduced in blocks of tensors of equal shape,
    small ones of rare shapes together in one vector."""
    rows: list[list[float]] = [[]] * len(xs)
    for members, batch in _batches(xs, join_small=True):
        if batch == "alone":
            rows[members[0]] = _stats_by_blocks(xs[members[0]])
            continue
        if batch == "joined":
            found = _concatenated_stats([xs[i] for i in members])
        else:
            matrix = _stacked([xs[i] for i in members], torch.float64).view(len(members), -1)
            found = _block_stats(matrix).tolist()
        for i, row in zip(members, found, strict=True):
            rows[i] = row
    return rows


def _segments(xs: Sequence[torch.Tensor], dtype: torch.dtype) -> tuple[np.ndarray, np.ndarray]:
    """The values of tensors of one dtype, all scalars or none, one after another as a numpy
    vector of dtype (a fresh copy), and the number of values of each."""
    if xs[0].dim() == 0:
        joined = torch.stack(list(xs))
    else:
        joined = torch.cat([x if x.dim() == 1 else x.reshape(-1) for x in xs])
    values = joined.to(dtype, copy=True).numpy()
    return values, np.fromiter((x.numel() for x in xs), dtype=np.int64, count=len(xs))


def _starts(counts: np.ndarray) -> np.ndarray:
    starts = np.zeros_like(counts)
    np.cumsum(counts[:-1], out=starts[1:])
    return starts


def _concatenated_stats(xs: Sequence[torch.Tensor]) -> list[list[float]]:
    """[min, max, mean, std] of small tensors, each a segment of one vector in double precision
    reduced by numpy's reduceat: the arithmetic of the stacked path (mean, then the mean of
    the squared deviations), a few calls for any number of tensors."""
    values, counts = _segments(xs, torch.float64)
    starts = _starts(counts)
    with np.errstate(all="ignore"):  # NaN and infinities give NaN as torch's reductions do
        low = np.minimum.reduceat(values, starts)
        high = np.maximum.reduceat(values, starts)
        mean = np.add.reduceat(values, starts) / counts
        values -= np.repeat(mean, counts)
        std = np.sqrt(np.add.reduceat(np.square(values, out=values), starts) / counts)
    # numpy and torch may disagree on the sign of a zero: bounds as row_bounds gives them,
    # from aminmax along the row of a double matrix, and the mean of negative zeros (all
    # tensors with a zero mean but no zero bound have a positive one)
    for i in np.flatnonzero((low == 0) | (high == 0)).tolist():
        row = xs[i].reshape(1, -1).to(torch.float64)
        low[i], high[i] = (float(v) for v in torch.aminmax(row, dim=1))
        if mean[i] == 0:
            mean[i] = float(row.mean(dim=1))
    return np.stack([low, high, mean, std], axis=1).tolist()


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


def _all_rounded_stats(rows: Sequence[list[float]]) -> list[Stats]:
    """Stats of [min, max, mean, std] rows, each rounded to STATS_DIGITS significant digits."""
    flat = rounded_all([v for row in rows for v in row], STATS_DIGITS)
    return [
        new_stats(min=flat[i], max=flat[i + 1], mean=flat[i + 2], std=flat[i + 3])
        for i in range(0, len(flat), 4)
    ]


def batch_stats(tensors: Sequence[torch.Tensor]) -> list[Stats]:
    """Population min, max, mean and std of each non-empty tensor, a few kernels per group.

    Tensors of one device, precision and size are stacked into one matrix and reduced along its
    rows, so the number of kernel launches grows with the number of distinct sizes, not tensors.
    """
    return _all_rounded_stats(_raw_stats([_as_real_float(t.detach()) for t in tensors]))


def batch_heatmaps(tensors: Sequence[torch.Tensor]) -> list[list[list[float]]]:
    """Each real tensor of two or more dimensions as a plane of at most 16×16 averaged cells
    (its first dimension down, the rest flattened across)."""
    maps: list[list[list[float]]] = [[]] * len(tensors)
    for members, batch in _batches(tensors):
        packed = batch == "packed"
        first = tensors[members[0]]
        if len(members) == 1 and _splits_evenly(first):
            cells = _heatmap_by_view(first)[None]
        else:
            rows = first.shape[0]
            if packed:
                stack = _stacked([tensors[i] for i in members], torch.float32)
            else:  # bigger than a block: pooled where it lies
                stack = first.to(torch.float32)[None]
            stack = stack.reshape(len(members), rows, -1)
            cols = stack.shape[2]
            if rows > HEATMAP_SIDE or cols > HEATMAP_SIDE:
                size = (min(rows, HEATMAP_SIDE), min(cols, HEATMAP_SIDE))
                stack = F.adaptive_avg_pool2d(stack[:, None], size)[:, 0]
            cells = stack
        rounded = round_tensor(cells.to(torch.float64), PREVIEW_DIGITS).tolist()
        for i, cell in zip(members, rounded, strict=True):
            maps[i] = cell
    return maps


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


def _heatmap_by_view(x: torch.Tensor) -> torch.Tensor:
    """The heatmap cells of a plane whose sides split evenly: the averages adaptive pooling
    gives, each window summed in double precision (the cells of a gradient can be a
    hundred-millionth of its values, which float32 sums would drown in rounding)."""
    rows = x.shape[0]
    cols = x.numel() // rows
    down, across = _cells_along(rows), _cells_along(cols)
    assert down is not None and across is not None
    run = cols // across  # the elements of one row that fall in one cell, side by side
    sums = _run_sums(x.reshape(-1), run).view(down, rows // down, across).sum(dim=1)
    return sums.div_((rows // down) * run)


def _run_sums(flat: torch.Tensor, run: int) -> torch.Tensor:
    """Sums in double precision of consecutive runs of `run` elements of a flat tensor, one
    block at a time."""
    runs = flat.numel() // run
    sums = torch.empty(runs, dtype=torch.float64)
    scratch = _scratch_block(torch.float64, min(flat.numel(), BLOCK_ELEMENTS))
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


def _all_edges(ranges: Sequence[tuple[float, float]]) -> list[list[float]]:
    """The 17 bin edges from low to high of each range, all rounded by one formatting call."""
    if not ranges:
        return []
    bounds = torch.tensor(ranges, dtype=torch.float64)
    low, high = bounds[:, :1], bounds[:, 1:]
    step = (high - low) / HISTOGRAM_BINS
    # low + i * step in double precision, the same arithmetic as with Python floats
    raw = low + torch.arange(HISTOGRAM_BINS + 1, dtype=torch.float64) * step
    # format() rounds as round_significant does, non-finite values included
    flat = rounded_all(raw.reshape(-1).tolist(), PREVIEW_DIGITS)
    width = HISTOGRAM_BINS + 1
    return [flat[i : i + width] for i in range(0, len(flat), width)]


def batch_histograms(
    tensors: Sequence[torch.Tensor], ranges: Sequence[tuple[float, float]]
) -> list[Histogram]:
    """Histograms (16 bins from min to max) of real tensors whose values are all finite."""
    counts_of: list[list[int]] = [[]] * len(tensors)
    for members, batch in _batches(tensors):
        packed = batch == "packed"
        device = tensors[members[0]].device
        bounds = torch.tensor([ranges[i] for i in members], dtype=torch.float32, device=device)
        low, high = bounds[:, :1], bounds[:, 1:]
        flat_range = low == high  # torch.histc widens an empty range by one on each side
        low, high = torch.where(flat_range, low - 1, low), torch.where(flat_range, high + 1, high)
        width = high - low
        if all(_step_is_exact(*ranges[i]) for i in members):
            # (x - low) * 16 / width == (x - low) / (width / 16) in float32 where neither the
            # product nor the quotient width / 16 leaves the normal range: one pass fewer
            width /= HISTOGRAM_BINS
            prescale = False
        else:
            prescale = True
        if packed:
            matrix = _stacked([tensors[i] for i in members], torch.float32)
            counts = _bin_counts(matrix.view(len(members), -1), low, width, prescale, owned=True)
        else:
            counts = sum(
                _bin_counts(part[None], low, width, prescale, owned=False)
                for part in _flat_values(tensors[members[0]]).split(BLOCK_ELEMENTS)
            )
        for i, row in zip(members, counts.reshape(len(members), -1).tolist(), strict=True):
            counts_of[i] = row
    return [
        new_histogram(edges=edges, counts=counts)
        for edges, counts in zip(_all_edges(ranges), counts_of, strict=True)
    ]


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
        out = _scratch_block(torch.float32, rows * numel).view(rows, numel)
        if matrix.dtype == torch.float32:
            scaled = torch.sub(matrix, low, out=out)
        else:
            scaled = out.copy_(matrix).sub_(low)
    if prescale:
        scaled.mul_(HISTOGRAM_BINS)
    scaled.div_(width)
    # bin numbers fit in 32 bits, which bincount counts several times faster than 64
    if scratch:
        bins = _scratch_block(torch.int32, rows * numel).view(rows, numel).copy_(scaled)
    else:
        bins = scaled.int()
    bins.clamp_(0, HISTOGRAM_BINS - 1)
    if rows > 1:
        bins += (
            torch.arange(rows, device=matrix.device, dtype=torch.int32)[:, None] * HISTOGRAM_BINS
        )
    return torch.bincount(bins.reshape(-1), minlength=rows * HISTOGRAM_BINS)


def _histogram(x: torch.Tensor) -> Histogram | None:
    finite = x if bool(torch.isfinite(x).all()) else x[torch.isfinite(x)]
    if finite.numel() == 0:
        return None
    finite = finite.to(torch.float32)
    low, high = (float(v) for v in torch.aminmax(finite))
    counts = torch.histc(finite, bins=HISTOGRAM_BINS, min=low, max=high)
    return new_histogram(
        edges=_all_edges([(low, high)])[0], counts=[int(c) for c in counts.tolist()]
    )


Pending = tuple[torch.Tensor, TensorData, bool, tuple[Any, ...]]  # tensor, data, preview, key


def _real(t: torch.Tensor) -> torch.Tensor:
    return t if t.dtype in _REAL else _as_real_float(t)


def _complete(pending: Sequence[Pending]) -> None:
    """Fill stats, and previews where asked for, of TensorData taken from these tensors.

    Tensors with the same values key share one Stats and one histogram, those that are also
    laid out alike one heatmap: the recorder meets a weight as a saved tensor, an input and a
    value, and a gradient as one step's output and the next one's input.
    """
    first: dict[tuple[Any, ...], int] = {}
    distinct: list[torch.Tensor] = []
    which: list[int] = []
    for t, _, _, key in pending:
        j = first.get(key)
        if j is None:
            j = first[key] = len(distinct)
            distinct.append(_real(t))
        which.append(j)
    distinct_rows = _raw_stats(distinct)
    distinct_stats = _all_rounded_stats(distinct_rows)
    shown: list[int] = []
    for index, ((_, data, preview, _), j) in enumerate(zip(pending, which, strict=True)):
        data.__dict__["stats"] = distinct_stats[j]  # one Stats for every view of the same values
        if preview and data.values is None:
            shown.append(index)
    if not shown:
        return
    plane_of: dict[tuple[Any, ...], list[int]] = {}
    for i in shown:
        t = pending[i][0]
        if t.dim() >= 2:
            plane_of.setdefault(_layout_key(t, pending[i][3]), []).append(i)
    planes = list(plane_of.values())
    heatmaps = batch_heatmaps([_real(pending[same[0]][0]) for same in planes])
    for same, heatmap in zip(planes, heatmaps, strict=True):
        for i in same:
            pending[i][1].__dict__["heatmap"] = heatmap
    histogram_of: dict[int, list[int]] = {}
    for i in shown:
        histogram_of.setdefault(which[i], []).append(i)
    # all values are finite exactly when min and max are: those share one batched histogram
    finite = [j for j in histogram_of if all(map(math.isfinite, distinct_rows[j][:2]))]
    ranges = [_float32_range(distinct_rows[j]) for j in finite]
    histograms = batch_histograms([distinct[j] for j in finite], ranges)
    by_values = dict(zip(finite, histograms, strict=True))
    for j, same in histogram_of.items():
        histogram = by_values[j] if j in by_values else _histogram(distinct[j])
        for i in same:
            pending[i][1].__dict__["histogram"] = histogram


def _values_key(x: torch.Tensor) -> tuple[Any, ...]:
    """Equal for two tensors that hold the same values, in any order.

    Views that fill the same block of memory (a gradient and its transpose or reshape, which
    backward steps pass on) hold the same values in another order, so they share statistics.
    """
    try:
        if x.is_contiguous() or _is_dense(x):
            return (x.data_ptr(), x.numel(), x.dtype, x.device)
    except RuntimeError:  # no strides (sparse): never shared
        pass
    return (id(x),)


def _layout_key(x: torch.Tensor, values_key: tuple[Any, ...]) -> tuple[Any, ...]:
    """Equal for two tensors with the same values key that also hold them in the same order."""
    return (*values_key, x.shape, x.stride()) if len(values_key) > 1 else values_key


def _is_dense(x: torch.Tensor) -> bool:
    """Whether x's elements fill a block of memory of x.numel() elements, each once."""
    if x.is_contiguous():
        return True
    if x.dim() == 2:  # the common case, a transposed matrix, without sorting
        rows, cols = x.shape
        return rows > 1 and cols > 1 and x.stride() == (1, rows)
    expected = 1
    for stride, size in sorted((st, n) for st, n in zip(x.stride(), x.shape, strict=True) if n > 1):
        if stride != expected:
            return False
        expected *= size
    return True


def _float32_range(row: list[float]) -> tuple[float, float]:
    return float(np.float32(row[0])), float(np.float32(row[1]))


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
