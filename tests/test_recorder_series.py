"""The training chart: a point per pass for the loss and every leaf."""

from __future__ import annotations

from app.lessons import get_lesson
from app.recorder import (
    TraceOptions,
)
from app.tracing import trace_code


def test_training_loop_keeps_series_after_recorded_passes() -> None:
    graph = trace_code(get_lesson("linear_regression").code, options=TraceOptions(max_passes=3))
    assert len(graph.backward) == 3
    assert graph.truncated.passes_recorded == 3
    assert graph.truncated.passes_total > 3
    loss = next(s for s in graph.series if s.kind == "loss")
    assert len(loss.values) == graph.truncated.passes_total
    assert loss.values[-1] < loss.values[0]
    assert {"w", "b"} <= {s.name for s in graph.series}
