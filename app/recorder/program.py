"""Record a whole program: its forward calls, bindings, passes, warnings and its own error."""

from __future__ import annotations

import traceback
from collections.abc import Callable

import numpy as np
import torch

from app.device_mode import device_context
from app.errors import LimitExceeded
from app.recorder.guards import QuietChecks, WarningsAsNotes, printed
from app.recorder.mode import RecordingMode
from app.recorder.modules import ModuleHooks
from app.recorder.options import TraceOptions, resolve_device
from app.recorder.process import TRACE_LOCK, PausedCollections
from app.recorder.recorder import Recorder
from app.recorder.source import PROGRAM_FILENAME
from app.schemas import ErrorInfo, Graph

_OUT_OF_MEMORY = ("can't allocate memory", "out of memory", "not enough memory")


class ProgramExit(Exception):
    """The program ended itself early (exit(), sys.exit()): the recording so far stands."""


def _error_info(exc: BaseException) -> ErrorInfo:
    line = None
    if isinstance(exc, SyntaxError) and exc.filename == PROGRAM_FILENAME:
        line = exc.lineno
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == PROGRAM_FILENAME:
            line = lineno
    message = printed(exc.msg if isinstance(exc, SyntaxError) else exc) or type(exc).__name__
    return ErrorInfo(type=type(exc).__name__, message=message[:2000], line=line)


def _warm_up_storage_types() -> None:
    # torch.Tensor([...]) as the first tensor of a process trips an internal assert under a
    # TorchFunctionMode; building one before the mode is entered loads what it needs.
    torch.Tensor([0.0])


def record_program(
    execute: Callable[[Recorder], None],
    device: str = "cpu",
    seed: int = 0,
    options: TraceOptions | None = None,
    source: str = "",
) -> Graph:
    """Record the autograd graph and backward passes of a program run by `execute(recorder)`.

    `execute` runs code compiled under PROGRAM_FILENAME whose variable bindings call
    `recorder.bind`. LimitExceeded and DeviceUnavailable end the recording; an exception of the
    program itself is recorded in the Graph with the part recorded before it.
    """
    options = options or TraceOptions()
    target = resolve_device(device)
    label = "cpu" if target.type == "cpu" else f"cuda:{target.index or 0}"
    recorder = Recorder(label, options, source)
    _warm_up_storage_types()
    with TRACE_LOCK:
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        with (
            device_context(target),
            ModuleHooks(recorder.modules, recorder.when_stopped, recorder.when_resumed),
            WarningsAsNotes(recorder),
            QuietChecks(recorder),
            RecordingMode(recorder),
        ):
            _run_program(recorder, execute)
            if recorder.graph.error is None and not recorder.graph.backward:
                _add_implicit_backward(recorder)
    with PausedCollections():  # finishing (the chain rules) allocates as much as recording
        graph = recorder.finish()
    recorder.release()
    return graph


def record_error(exc: BaseException, device: str = "cpu") -> Graph:
    """An empty recording that holds only the program's error (e.g. a SyntaxError)."""
    recorder = Recorder(device, TraceOptions())
    recorder.graph.error = _error_info(exc)
    return recorder.finish()


def _run_program(recorder: Recorder, execute: Callable[[Recorder], None]) -> None:
    try:
        execute(recorder)
    except LimitExceeded:
        raise
    except ProgramExit:
        pass
    except MemoryError:
        raise LimitExceeded("memory", "the program ran out of its memory limit") from None
    except BaseException as exc:  # the program's own failure, KeyboardInterrupt included
        if isinstance(exc, RuntimeError) and any(m in printed(exc) for m in _OUT_OF_MEMORY):
            raise LimitExceeded("memory", f"the program ran out of memory: {exc}") from None
        recorder.graph.error = _error_info(exc)
        if recorder.recording:
            try:
                recorder.graph.error.node = recorder.add_failed_call(exc)
            except LimitExceeded:
                recorder.hit_node_limit(recorder.graph.error.line)
        failed_pass = recorder.failed_pass
        if failed_pass is not None and failed_pass.error is exc:  # backward() itself raised
            recorder.graph.error.pass_index = failed_pass.index
            recorder.graph.error.roots = failed_pass.roots


def _add_implicit_backward(recorder: Recorder) -> None:
    t = recorder.names.last_top_tensor
    if not recorder.recording:  # a limit ended the recording: such a pass would show nothing
        return
    if t is None or t.numel() != 1 or not t.requires_grad or t.grad_fn is None:
        return
    recorder.run_pass(torch.Tensor.backward, (t,), {}, added=True)
    name = recorder.names.bound_name(t, "the result")
    recorder.notes.note(
        "implicitBackward",
        f"The program never called backward(); the explorer ran {name}.backward() to show the "
        "backward pass.",
        name=name,
    )
