"""Record live tensors (trace_tensors) or one call of trusted code (trace_callable)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from operator import methodcaller
from typing import Any

import torch
from torch import nn

from app.recorder.autograd_facts import iter_tensors, node_kind
from app.recorder.mode import RecordingMode
from app.recorder.modules import ModuleHooks
from app.recorder.options import TraceOptions
from app.recorder.process import TRACE_LOCK, FewerCollections, PausedCollections
from app.recorder.recorder import Recorder
from app.schemas import Graph


def _with_values(options: TraceOptions | None, values: bool) -> TraceOptions:
    """The options of a recording, without values when values is False."""
    options = options or TraceOptions()
    return options if values else replace(options, values=False)


# where torch made an autograd node in its thread's order (the key the ops are sorted by)
_sequence_nr = methodcaller("_sequence_nr")


def _record_gradient_pass(recorder: Recorder, roots: Iterable[torch.Tensor]) -> None:
    """One pass from the scalar roots through autograd.grad, so no .grad is touched."""
    scalar_roots = [t for t in roots if t.numel() == 1 and t.grad_fn is not None]
    if not scalar_roots:
        return
    for t in scalar_roots:
        recorder.builder.tensor_node(t)
    leaves = list(recorder.builder.leaves_with_accumulators)
    on_cpu = all(t.device.type == "cpu" for t in (*scalar_roots, *leaves))
    if leaves and not recorder.options.values and on_cpu:  # the CPU engine's order is known
        recorder.passes.record_unrun(scalar_roots, leaves)  # no gradient needs computing
    elif leaves:
        # nothing runs between the pass and finish(): one flush there summarises both, and the
        # leaves' .grad read by each only once
        recorder.run_pass(
            torch.autograd.grad,
            (scalar_roots,),
            {"inputs": leaves, "retain_graph": True, "allow_unused": True},
            flush=False,
        )


def trace_tensors(
    *tensors: torch.Tensor,
    names: Mapping[str, torch.Tensor | nn.Module] | None = None,
    backward: bool = True,
    options: TraceOptions | None = None,
    values: bool = True,
) -> Graph:
    """Record the graph behind live tensors; a scalar root's backward leaves .grad untouched.
    values=False records the structure alone (names, ops, shapes, the engine's order), as
    fast as drawing the graph: on the CPU the backward pass is worked out, not run."""
    options = _with_values(options, values)
    device = str(tensors[0].device) if tensors else "cpu"
    recorder = Recorder(device, options)
    recorder.names.name_inputs(names)
    builder = recorder.builder
    with TRACE_LOCK, PausedCollections():
        fns = recorder.passes.reachable([t.grad_fn for t in tensors])
        made_by: dict[int, list[torch.Tensor]] = {}  # the tensors each autograd node output
        for t in tensors:
            if t.grad_fn is not None:
                made_by.setdefault(id(t.grad_fn), []).append(t)
        ops = [f for f in fns if not node_kind(f).accumulates]
        ops.sort(key=_sequence_nr)
        builder.record_in_sequence(ops, made_by, recorder.passes_total)
        for t in tensors:
            builder.tensor_node(t)
        if backward:
            _record_gradient_pass(recorder, tensors)
        graph = recorder.finish()
    recorder.release()
    return graph


def trace_callable(
    fn: Callable[..., Any],
    *args: Any,
    names: Mapping[str, torch.Tensor | nn.Module] | None = None,
    backward: bool = True,
    options: TraceOptions | None = None,
    values: bool = True,
    **kwargs: Any,
) -> tuple[Graph, Any]:
    """Run fn(*args, **kwargs) under the recorder (trusted code, no sandbox): (Graph, result).

    Forward calls are recorded with their nn.Module paths; a scalar result's backward pass is
    recorded without touching any .grad; values=False records the structure alone.
    """
    options = _with_values(options, values)
    recorder = Recorder("cpu", options)
    recorder.names.name_inputs(names)
    with TRACE_LOCK, FewerCollections():
        with (
            ModuleHooks(recorder.modules, recorder.when_stopped, recorder.when_resumed),
            RecordingMode(recorder),
        ):
            result = fn(*args, **kwargs)
        outputs = list(iter_tensors(result))
        if outputs:
            recorder.graph.device = str(outputs[0].device)
        for t in outputs:
            if t.grad_fn is not None and not recorder.builder.knows(t.grad_fn):
                recorder.record_unseen(t, None)
            recorder.builder.tensor_node(t)
        if backward:
            _record_gradient_pass(recorder, outputs)
        graph = recorder.finish()
    recorder.release()
    return graph, result
