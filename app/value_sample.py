"""The values a histogram of a big tensor counts: a fixed, evenly spread sample of them."""

from __future__ import annotations

from functools import lru_cache

import torch

# Counts of this many values put each of 16 bars within a tenth of a pixel (of a 60 px chart)
# of the full tensor's, at 1 in 10 of the standard error, while the work stays a fixed cost.
HISTOGRAM_SAMPLE = 1 << 16


@lru_cache(maxsize=16)
def sample_positions(numel: int, device: torch.device) -> torch.Tensor:
    """The increasing positions of the values that histogram_values takes from a flat tensor of
    numel elements, more than HISTOGRAM_SAMPLE of them (cached and shared: not to be changed).

    One position in each of HISTOGRAM_SAMPLE equal stretches of the tensor, at a place in its
    stretch drawn once for this size: spread like a stride, but no periodic layout (the same
    tap of every 3×3 kernel) can line up with it. Its own generator leaves the program's random
    numbers alone, and the same size always gets the same positions."""
    generator = torch.Generator().manual_seed(numel)
    bounds = torch.arange(HISTOGRAM_SAMPLE + 1, dtype=torch.int64) * numel // HISTOGRAM_SAMPLE
    starts, widths = bounds[:-1], bounds[1:] - bounds[:-1]
    jitter = torch.rand(HISTOGRAM_SAMPLE, generator=generator, dtype=torch.float64)
    positions = starts + (jitter * widths).long()  # below starts + widths: rand is below 1
    return positions.to(device)


def histogram_values(flat: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """The one-dimensional values a histogram counts, and whether they are a sample of flat."""
    if flat.numel() <= HISTOGRAM_SAMPLE:
        return flat, False
    return flat.index_select(0, sample_positions(flat.numel(), flat.device)), True
