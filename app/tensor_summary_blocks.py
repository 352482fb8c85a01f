"""Statistics of many tensors at once, read in blocks: reused scratch buffers, batches of
tensors of one size, and the exact [min, max, mean, std] of each."""

from __future__ import annotations

import functools
import itertools
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Literal, Protocol

import numpy as np
import torch

# the unit of work on the CPU: 1 MiB of doubles, small enough to stay in the cache, reused
BLOCK_ELEMENTS = 1 << 17
# batches of work from this many elements go through the scratch blocks
SCRATCH_FROM = 1 << 12
# tensors of one shape have their statistics taken up to this many elements at a time: each
# call then covers more tensors, which counts for more than a block that stays in the cache
STACKED_ELEMENTS = 1 << 19


# the integer of a float's bits that only a negative zero has: the least of its width
_NEGATIVE_ZERO_BITS = {
    torch.float32: (torch.int32, -(1 << 31)),
    torch.float64: (torch.int64, -(1 << 63)),
}


def row_bounds(matrix: torch.Tensor) -> tuple[list[float], list[float]]:
    """torch.aminmax(matrix, dim=1) as lists, computed by amin and amax where that gives the
    same.

    On the CPU amin and amax are many times faster than aminmax; they find the same values but
    may disagree on the sign of a zero where a row holds both zeros, so only rows with a zero
    bound and a negative zero are taken from aminmax (a row whose zeros are all positive has
    +0 as its zero bound either way, and after a ReLU many rows do).
    """
    bits = _NEGATIVE_ZERO_BITS.get(matrix.dtype)
    if matrix.device.type != "cpu" or bits is None or not matrix.is_contiguous():
        low_t, high_t = torch.aminmax(matrix, dim=1)
        return low_t.tolist(), high_t.tolist()
    low, high = matrix.amin(dim=1).tolist(), matrix.amax(dim=1).tolist()
    zero = [r for r, (a, b) in enumerate(zip(low, high, strict=True)) if a == 0 or b == 0]
    if zero:
        # a negative zero's bits are the least integer of their width: one integer minimum
        rows = matrix[zero].view(bits[0])
        signed = (rows.amin(dim=1) == bits[1]).tolist()
        mixed = [r for r, negative in zip(zero, signed, strict=True) if negative]
        if mixed:
            found_low, found_high = torch.aminmax(matrix[mixed], dim=1)
            for r, a, b in zip(mixed, found_low.tolist(), found_high.tolist(), strict=True):
                low[r], high[r] = a, b
    return low, high


Layout = tuple[torch.device, torch.Size]

_scratch = threading.local()


def scratch_block(dtype: torch.dtype, elements: int) -> torch.Tensor:
    """The first `elements` (at most STACKED_ELEMENTS) of this thread's reusable CPU buffer of
    dtype, which grows by powers of two up to that.

    A fresh temporary as big as a tensor costs a page fault per 4 KiB, more than the arithmetic
    done in it; one buffer reused for every block stays mapped and in the cache, and a thread
    that only ever summarises small tensors keeps a small one.
    """
    buffers: dict[torch.dtype, torch.Tensor] | None = getattr(_scratch, "buffers", None)
    if buffers is None:
        buffers = _scratch.buffers = {}
    block = buffers.get(dtype)
    if block is None or len(block) < elements:
        size = min(STACKED_ELEMENTS, 1 << max(elements - 1, 1023).bit_length())
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


def batches(
    tensors: Sequence[torch.Tensor], join_small: bool = False, per_batch: int = BLOCK_ELEMENTS
) -> Iterator[tuple[list[int], Batch]]:
    """Indexes of tensors summarised together, and how: "packed" (one device and shape, they
    fit one block stacked), "alone" (a tensor bigger than a block) or, where join_small,
    "joined" (small CPU tensors of two or more shapes each met a few times, of one dtype, at
    most a block of them one after another); packed batches hold up to per_batch elements
    (at most STACKED_ELEMENTS), and which tensors share one may decide how they are
    summarised (a heatmap averaged by view is taken of a batch of one)."""
    rare: dict[torch.dtype, list[list[int]]] = {}
    for (device, shape), members in _by_layout(tensors).items():
        numel = shape.numel()
        is_cpu = device.type == "cpu"
        if join_small and is_cpu and numel <= CONCAT_UP_TO and len(members) < STACKED_FROM:
            dtypes: dict[torch.dtype, list[int]] = {}
            for i in members:
                dtypes.setdefault(tensors[i].dtype, []).append(i)
            for dtype, same in dtypes.items():  # torch.cat joins one dtype fastest
                rare.setdefault(dtype, []).append(same)
            continue
        yield from _packed(members, numel, is_cpu, per_batch)
    for groups in rare.values():
        if len(groups) == 1:  # one shape: stacked costs no more calls than joined
            yield from _packed(groups[0], tensors[groups[0][0]].numel(), True, per_batch)
            continue
        chunk: list[int] = []
        elements = 0
        for i in (i for group in groups for i in group):
            numel = tensors[i].numel()
            if elements + numel > BLOCK_ELEMENTS:
                yield chunk, "joined"
                chunk, elements = [], 0
            chunk.append(i)
            elements += numel
        yield chunk, "joined"


def _packed(
    members: list[int], numel: int, is_cpu: bool, per_batch: int
) -> Iterator[tuple[list[int], Batch]]:
    """Tensors of one device and shape: alone where bigger than a block, else in batches of
    up to per_batch elements."""
    if is_cpu and numel > BLOCK_ELEMENTS:
        for i in members:
            yield [i], "alone"
        return
    per = max(1, per_batch // max(numel, 1)) if is_cpu else len(members)
    for start in range(0, len(members), per):
        yield members[start : start + per], "packed"


# up to this many tensors are converted into a block one copy each (a read and a write, where
# stacking then converting is two); more of them, the calls cost more than the second pass
COPIED_UP_TO = 8


def stacked(tensors: Sequence[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    """The tensors (one device and shape) stacked and converted to dtype, a copy the caller may
    change: a big one on the CPU goes into this thread's scratch block, so it lasts until the
    block is used again (small temporaries cost less than the calls that would reuse one)."""
    first = tensors[0]
    elements = len(tensors) * first.numel()
    if first.device.type != "cpu" or elements < SCRATCH_FROM:
        return torch.stack(list(tensors)).to(dtype)
    out = scratch_block(dtype, elements).view(len(tensors), *first.shape)
    if all(t.dtype == dtype for t in tensors):
        return torch.stack(list(tensors), out=out)
    if all(t.dtype == first.dtype for t in tensors) and len(tensors) > COPIED_UP_TO:
        # stack converts element by element: stacked as they are, then converted at once
        staged = scratch_block(first.dtype, elements).view(len(tensors), *first.shape)
        return out.copy_(torch.stack(list(tensors), out=staged))
    for row, t in zip(out.unbind(), tensors, strict=True):
        row.copy_(t)
    return out


def flat_elements(x: torch.Tensor) -> torch.Tensor:
    """x's elements in one dimension, in some order (statistics and histograms do not depend
    on it), without a copy where they fill one block of memory."""
    if x.is_contiguous():
        return x.view(-1)
    if is_dense(x):
        return x.as_strided((x.numel(),), (1,))
    return x.reshape(-1)


# what _block_stats hands its caller's hook: the stacked matrix (a row per tensor, in their
# logical order) and its row bounds
OnBlock = Callable[[torch.Tensor, list[float], list[float]], None]


def _block_stats(matrix: torch.Tensor, on_block: OnBlock | None = None) -> list[list[float]]:
    """[min, max, mean, std] of each row of a float matrix that the caller owns, in double
    precision (a float64 matrix is centred in place); on_block, if any, sees the matrix and
    its bounds once its values are read into double precision."""
    if matrix.dtype != torch.float64:
        rows, numel = matrix.shape
        if matrix.device.type == "cpu" and rows * numel >= SCRATCH_FROM:
            values = scratch_block(torch.float64, rows * numel).view(rows, numel).copy_(matrix)
        else:
            values = matrix.double()
    else:
        values = matrix
    low, high = row_bounds(values)
    if on_block is not None:
        on_block(matrix, low, high)
    # two passes in double precision, centred in place
    mean = values.mean(dim=1)
    std = values.sub_(mean[:, None]).square_().mean(dim=1).sqrt_()
    spread = torch.stack([mean, std], dim=1).tolist()
    return [[a, b, *rest] for a, b, rest in zip(low, high, spread, strict=True)]


class BlockReader(Protocol):
    """What raw_stats tells, while values are at hand, to whoever also previews them."""

    def block(
        self, members: list[int], matrix: torch.Tensor, low: list[float], high: list[float]
    ) -> None:
        """A block of stacked tensors (their indexes; a row each in its logical order, native
        precision, the callee's to change when float32; its row bounds)."""

    def wanted(self, index: int) -> tuple[int | None, torch.Tensor | None]:
        """For a tensor bigger than a block: the length of the runs whose double sums are
        wanted (None: none), and the positions of the values wanted in memory order."""
        return None, None

    def read(self, index: int, sums: torch.Tensor | None, values: torch.Tensor | None) -> None:
        """The run sums and values taken from a tensor bigger than a block."""


def _stats_by_blocks(
    x: torch.Tensor, run: int | None = None, positions: torch.Tensor | None = None
) -> tuple[list[float], torch.Tensor | None, torch.Tensor | None]:
    """[min, max, mean, std] of a tensor bigger than a block, read once, a block at a time:
    each block's bounds as it lies, then its mean and centred sum of squares in double
    precision in the scratch block, pooled (Chan, Golub and LeVeque). While each block is at
    hand, also the double sums of consecutive runs of `run` elements of a contiguous x (each
    summed as one row of a matrix of runs, as _run_sums sums them; None unless asked for) and
    its values at these increasing positions (None unless asked for)."""
    flat = flat_elements(x)
    scratch = scratch_block(torch.float64, BLOCK_ELEMENTS)
    parts = flat.split(BLOCK_ELEMENTS)
    lows, highs = torch.empty(2, len(parts), dtype=flat.dtype).unbind()
    means, squares = torch.empty(2, len(parts), dtype=torch.float64).unbind()
    sums = across = None
    if run is not None:
        sums = torch.empty(flat.numel() // run, dtype=torch.float64)
        across = torch.empty(1, run, dtype=torch.float64)  # a run across two blocks
    values = taken = None
    if positions is not None:
        values = torch.empty(len(positions), dtype=flat.dtype)
        starts = torch.arange(len(parts) + 1, dtype=torch.int64) * BLOCK_ELEMENTS
        taken = torch.searchsorted(positions, starts).tolist()
    for index, part in enumerate(parts):
        # bounds need no double precision: taken from the block as it lies (it then stays in
        # the cache for the copy), a tensor of tens of megabytes is read from memory once
        torch.amin(part, dim=0, out=lows[index])
        torch.amax(part, dim=0, out=highs[index])
        block = scratch[: part.numel()].copy_(part)
        start = index * BLOCK_ELEMENTS
        if sums is not None and run is not None and across is not None:
            _sum_runs(flat, block, start, run, sums, across)
        if values is not None and positions is not None and taken is not None:
            low, high = taken[index], taken[index + 1]
            if high > low:
                torch.index_select(part, 0, positions[low:high] - start, out=values[low:high])
        torch.mean(block, dim=0, out=means[index])
        # a dot product sums the squares without writing them back
        torch.dot(block.sub_(means[index]), block, out=squares[index])
    counts = torch.tensor([part.numel() for part in parts], dtype=torch.float64)
    mean = (counts * means).sum() / flat.numel()
    total = squares.sum() + (counts * (means - mean).square()).sum()
    low, high = lows.amin(), highs.amax()
    if low == 0 or high == 0:  # the sign of a zero bound as torch.aminmax gives it
        low, high = torch.aminmax(flat)
    row = [float(low), float(high), float(mean), math.sqrt(float(total) / flat.numel())]
    return row, sums, values


def _sum_runs(
    flat: torch.Tensor,
    block: torch.Tensor,
    start: int,
    run: int,
    sums: torch.Tensor,
    across: torch.Tensor,
) -> None:
    """The double sums of the runs that end in this block (its values from flat[start:] in
    double precision), each summed as a row of runs."""
    end = start + len(block)
    first, last = -(-start // run), end // run  # the runs wholly inside the block
    if last > first:
        whole = block[first * run - start : last * run - start].view(last - first, run)
        torch.sum(whole, dim=1, out=sums[first:last])
    if end % run and last < len(sums) and last * run >= start:
        # the run that goes on past this block, read whole on its own
        across.view(-1).copy_(flat[last * run : (last + 1) * run])
        torch.sum(across, dim=1, out=sums[last : last + 1])


def raw_stats(xs: Sequence[torch.Tensor], reader: BlockReader | None = None) -> list[list[float]]:
    """[min, max, mean, std] of each real tensor, reduced in blocks of tensors of equal shape,
    small ones of rare shapes together in one vector.

    A reader, if given, is told every block of stacked tensors and asked what else to take
    from tensors bigger than a block, while their values are at hand: other summaries of them
    need not read them again.
    """
    rows: list[list[float]] = [[]] * len(xs)
    # each row's statistics are the same in any batch: as many as the scratch blocks hold
    for members, batch in batches(xs, join_small=True, per_batch=STACKED_ELEMENTS):
        if batch == "alone":
            index = members[0]
            run, positions = (None, None) if reader is None else reader.wanted(index)
            rows[index], sums, values = _stats_by_blocks(xs[index], run, positions)
            if reader is not None and (sums is not None or values is not None):
                reader.read(index, sums, values)
            continue
        if batch == "joined":
            found = _concatenated_stats([xs[i] for i in members])
        else:
            group = [xs[i] for i in members]
            # one precision stacked as it is (its bounds read at half the bytes), else in double
            dtype = group[0].dtype if all(x.dtype == group[0].dtype for x in group) else None
            matrix = stacked(group, dtype or torch.float64).view(len(members), -1)
            hook = None if reader is None else functools.partial(reader.block, members)
            found = _block_stats(matrix, hook)
        for i, row in zip(members, found, strict=True):
            rows[i] = row
    return rows


def _segments(xs: Sequence[torch.Tensor], dtype: torch.dtype) -> tuple[np.ndarray, np.ndarray]:
    """The values of tensors of one dtype one after another, as a numpy vector of dtype (a
    fresh copy), and the number of values of each."""
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
    return _segment_stats(values, counts)


def listed_stats(lists: Sequence[list[float]]) -> list[list[float]]:
    """[min, max, mean, std] of each list of values (those of a small tensor, already read
    into Python), the same numbers as raw_stats gives for the tensors, without a torch call."""
    rows: list[list[float]] = [[]] * len(lists)
    longer = []
    few = sum(map(len, lists)) <= PYTHON_STATS_UP_TO
    for i, values in enumerate(lists):
        if len(values) == 1:
            rows[i] = _one_value_stats(float(values[0]))
            continue
        row = _python_stats(values) if few else None
        if row is None:
            longer.append(i)
        else:
            rows[i] = row
    if longer:
        counts = np.fromiter((len(lists[i]) for i in longer), dtype=np.int64, count=len(longer))
        joined = itertools.chain.from_iterable(lists[i] for i in longer)
        flat = np.fromiter(joined, dtype=np.float64, count=int(counts.sum()))
        found = _segment_stats(flat, counts)
        for i, row in zip(longer, found, strict=True):
            rows[i] = row
    return rows


# up to this many values in all, statistics are taken in Python: fewer calls than numpy's
PYTHON_STATS_UP_TO = 256


def _python_stats(values: list[float]) -> list[float] | None:
    """[min, max, mean, std] of finite values, none of them a zero bound and with a non-zero
    sum, by Python's arithmetic; None for the others, whose signs of zero and non-finite
    results numpy's path settles. The sums are math.fsum's, exact before their one rounding:
    the same as any order's where that order's sum is exact (as the double sum of a few
    float32 values is), and within a rounding of it elsewhere."""
    try:
        total = math.fsum(values)
    except (ValueError, OverflowError):  # infinities of both signs, or an overflow
        return None
    if total == 0 or not math.isfinite(total):
        return None
    low, high = min(values), max(values)
    if low == 0 or high == 0:
        return None
    mean = total / len(values)
    squares = math.fsum([(v - mean) * (v - mean) for v in values])
    return [float(low), float(high), mean, math.sqrt(squares / len(values))]


def _one_value_stats(v: float) -> list[float]:
    """[min, max, mean, std] of a single value: itself thrice (a zero mean +0, as torch's sums
    start from +0) and v - v squared, NaN where v is not finite."""
    return [v, v, v if v != 0 else 0.0, 0.0 if math.isfinite(v) else math.nan]


def _segment_stats(values: np.ndarray, counts: np.ndarray) -> list[list[float]]:
    """[min, max, mean, std] of each segment of a double vector, `counts` values long, with
    the signs of zero that the stacked path gives."""
    starts = _starts(counts)
    with np.errstate(all="ignore"):  # NaN and infinities give NaN as torch's reductions do
        low = np.minimum.reduceat(values, starts)
        high = np.maximum.reduceat(values, starts)
        mean = np.add.reduceat(values, starts) / counts
        centred = values - np.repeat(mean, counts)
        std = np.sqrt(np.add.reduceat(np.square(centred, out=centred), starts) / counts)
    for i in np.flatnonzero((low == 0) | (high == 0) | (mean == 0)).tolist():
        _match_zero_signs(values[starts[i] : starts[i] + counts[i]], i, low, high, mean)
    return np.stack([low, high, mean, std], axis=1).tolist()


def _match_zero_signs(
    row: np.ndarray, i: int, low: np.ndarray, high: np.ndarray, mean: np.ndarray
) -> None:
    """Row i's zero bounds and zero mean with the signs the stacked path gives.

    torch.aminmax along a double row may return either zero where the row holds both, so such
    bounds are taken from it; a row whose zeros are all of one sign has that zero as its bound
    either way. Torch's sums start from +0, so a mean of zeros alone is +0; any other zero
    mean (an underflow) is taken from torch.
    """
    zeros = np.signbit(row[row == 0])
    if (low[i] == 0 or high[i] == 0) and 0 < int(zeros.sum()) < len(zeros):
        low[i], high[i] = (float(v) for v in torch.aminmax(torch.from_numpy(row)[None], dim=1))
    if mean[i] == 0:
        if len(zeros) == len(row):
            mean[i] = 0.0
        else:
            mean[i] = float(torch.from_numpy(row)[None].mean(dim=1))


def is_dense(x: torch.Tensor) -> bool:
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
