"""The training chart: the loss and every leaf (its value, or its norm) once per backward pass."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from app.recorder.autograd_facts import plottable
from app.records import maker
from app.schemas import Series, TensorNode
from app.tensor_summary import scalar_of

new_series = maker(Series)  # a record per series of a recording: nothing to check


@dataclass
class TrainingSeries:
    """One series per name, each with a point per backward pass (None before it was drawn)."""

    max_points: int
    _series: dict[str, Series] = field(default_factory=dict)
    _sources: list[tuple[str, torch.Tensor, bool]] | None = None

    def sources(
        self, recording: bool, tensors: Iterable[tuple[object, torch.Tensor]]
    ) -> list[tuple[str, torch.Tensor, bool]]:
        """(series name, leaf, is a scalar) of every leaf plotted once per pass."""
        if recording or self._sources is None:
            # one source per series name: a leaf rebound under the same name plots its latest
            sources: dict[str, tuple[str, torch.Tensor, bool]] = {}
            norms = 0
            for count, (node, t) in enumerate(tensors):
                if count >= 10_000:
                    break
                if isinstance(node, TensorNode) and node.is_leaf and node.requires_grad:
                    if t.numel() == 1:
                        sources[node.label] = (node.label, t, True)
                    elif norms < 16 or f"‖{node.label}‖" in sources:
                        norms += f"‖{node.label}‖" not in sources
                        sources[f"‖{node.label}‖"] = (f"‖{node.label}‖", t, False)
            self._sources = list(sources.values())  # fixed while paused: no new leaves drawn
        return self._sources

    def record(
        self,
        roots: list[torch.Tensor],
        passes: int,
        sources: list[tuple[str, torch.Tensor, bool]],
    ) -> None:
        """One point per series for the pass just run (the passes-th)."""
        if len(roots) == 1:
            self._append("loss", "loss", scalar_of(roots[0]), passes)
        vectors = [plottable(t) for _, t, scalar in sources if not scalar]
        norms = iter(torch._foreach_norm(vectors)) if vectors else iter(())
        for name, t, scalar in sources:
            value = scalar_of(t) if scalar else float(next(norms))
            self._append(name, "parameter", value, passes)

    def _append(self, name: str, kind: str, value: float | None, passes: int) -> None:
        series = self._series.get(name)
        if series is None:
            series = self._series[name] = new_series(name=name, kind=kind, values=[])
            series.values.extend([None] * (passes - 1))
        if len(series.values) < self.max_points:
            series.values.append(value if value is None or math.isfinite(value) else str(value))

    def drawn(self) -> list[Series]:
        """Every series with at least one point."""
        return [s for s in self._series.values() if any(v is not None for v in s.values)]

    def forget_sources(self) -> None:
        """Draw from the leaves recorded by then at the next pass (recording resumed)."""
        self._sources = None
