"""The bounds of one recording, and the device it runs on."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from app.errors import DeviceUnavailable

PASS_ROUNDS = 8  # rounds of max_passes passes recorded in full over one program


def most_passes(max_passes: int) -> int:
    """The most backward passes one recording keeps in full; later ones are counted and charted."""
    return max(1, max_passes) * PASS_ROUNDS


@dataclass(frozen=True)
class TraceOptions:
    """Bounds of one recording."""

    inline_limit: int = 64
    max_nodes: int = 20_000
    max_passes: int = 8
    max_series_points: int = 10_000
    max_saved_repr: int = 120
    # False: structure only (names, ops, shapes, passes, the engine's order); no values,
    # statistics, previews or training chart
    values: bool = True


def resolve_device(device: str) -> torch.device:
    """torch.device for cpu | cuda | auto; DeviceUnavailable when CUDA is absent but asked for."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailable("CUDA was requested but no CUDA device is available here")
        return torch.device("cuda")
    if device == "cpu":
        return torch.device("cpu")
    raise DeviceUnavailable(f"unknown device {device!r}; use cpu, cuda or auto")
