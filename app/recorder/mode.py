"""The TorchFunctionMode that routes every torch call of the program through the Recorder."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from app.errors import LimitExceeded
from app.recorder.autograd_facts import (
    PASS_FUNCTIONS,
    call_name_of,
    in_function_transform,
    writes_in_place,
)
from app.recorder.process import FewerCollections
from app.recorder.recorder import Recorder
from app.recorder.source import TORCH_DIR, user_line

# files on the way from a backward()/grad() call to the mode: the dispatcher and the functions
_DISPATCH_FILES = frozenset(
    str(Path(m.__file__).resolve())
    for m in (torch.overrides, torch.autograd, torch._tensor)
    if getattr(m, "__file__", None)
)


def _called_from_torch() -> bool:
    """Whether the backward()/grad() being dispatched was called by torch's own code."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename in _DISPATCH_FILES:
        frame = frame.f_back
    return frame is not None and frame.f_code.co_filename.startswith(TORCH_DIR)


class RecordingMode(TorchFunctionMode):
    """Routes every torch call of the program through the Recorder."""

    def __init__(self, recorder: Recorder) -> None:
        super().__init__()
        self.recorder = recorder
        self._collections = FewerCollections()
        self.aside = False
        self._original_backward: Any = None
        recorder.mode = self

    def __enter__(self) -> RecordingMode:
        self._collections.__enter__()
        return super().__enter__()

    def __exit__(self, *exc: Any) -> None:
        self.step_back()
        try:
            super().__exit__(*exc)
        finally:
            self._collections.__exit__()

    def step_aside(self) -> None:
        """Leave torch's mode stack once nothing more is recorded, so torch calls run at their
        own speed; backward() keeps being counted for the training plot. Only called between
        torch calls (from a variable binding), where this mode is on top of the stack."""
        depth = torch._C._len_torch_function_stack()
        if self.aside or not depth or torch._C._get_function_stack_at(depth - 1) is not self:
            return
        torch._C._pop_torch_function_stack()
        self.aside = True
        recorder, original = self.recorder, torch.Tensor.backward
        self._original_backward = original

        @functools.wraps(original)
        def counted_backward(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            return recorder.run_pass(original, (tensor, *args), kwargs)

        torch.Tensor.backward = counted_backward  # type: ignore[method-assign]

    def step_back(self) -> None:
        """Return to the mode stack (before leaving it as a context manager)."""
        if not self.aside:
            return
        torch.Tensor.backward = self._original_backward  # type: ignore[method-assign]
        torch._C._push_on_torch_function_stack(self)
        self.aside = False

    def __torch_function__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        rec = self.recorder
        if not rec.recording and func not in PASS_FUNCTIONS:  # the run goes on unrecorded
            return func(*args, **(kwargs or {}))
        kwargs = kwargs or {}
        if in_function_transform():  # torch.func's wrapped tensors have no storage to record
            rec.notes.note_once(
                "functionTransform",
                "torch.func transforms (grad, vmap, jacrev, ...) ran without being recorded "
                "inside; the tensors they return are recorded where the program uses them.",
            )
            return func(*args, **kwargs)
        if len(rec.summaries) and writes_in_place(func, kwargs):
            rec.summaries.flush()  # pending statistics must see the values as they were recorded
        if rec.busy or rec.in_pass:
            return func(*args, **kwargs)
        if func in PASS_FUNCTIONS:
            if _called_from_torch():  # gradcheck, jacobian: torch's own passes, not the program's
                with rec.quiet():
                    return func(*args, **kwargs)
            return rec.run_pass(func, args, kwargs)
        try:
            out = func(*args, **kwargs)
        except Exception as exc:
            if rec.recording and not isinstance(exc, LimitExceeded):
                rec.remember_failure(exc, func, args, kwargs)
            raise
        if rec.recording:
            try:
                rec.on_call(func, args, kwargs, out)  # directly: it reads the caller's frame
            except LimitExceeded as exc:
                if exc.limit != "nodes":
                    raise
                rec.hit_node_limit(user_line())
            except Exception as exc:  # noqa: BLE001 - a call the recorder cannot describe
                name, message = call_name_of(func), f"{type(exc).__name__}: {str(exc)[:200]}"
                rec.notes.note_once(
                    "callNotRecorded",
                    f"A call of {name} could not be recorded; the program ran on, and the graph "
                    f"leaves it out: {message}",
                    call=name,
                    message=message,
                )
        return out
