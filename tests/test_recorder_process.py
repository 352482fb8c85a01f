"""Process-wide state: garbage collection paused while recording and restored after."""

from __future__ import annotations

import gc
import threading

import pytest
import torch

from app.recorder import (
    PausedCollections,
    trace_tensors,
)


def _small_loss() -> torch.Tensor:
    w = torch.randn(4, 3, requires_grad=True)
    return (torch.randn(2, 4) @ w).relu().sum()


def test_collections_are_paused_while_recording_and_restored_after() -> None:
    seen: list[bool] = []
    loss = _small_loss()
    handle = loss.grad_fn.register_prehook(lambda grads: seen.append(gc.isenabled()))
    assert gc.isenabled()
    trace_tensors(loss)
    handle.remove()
    assert seen == [False] and gc.isenabled()
    gc.disable()
    try:
        trace_tensors(_small_loss())
        assert not gc.isenabled()  # left as it was found
    finally:
        gc.enable()


def test_paused_collections_nest_across_threads_and_errors() -> None:
    entered, leave = threading.Event(), threading.Event()

    def hold() -> None:
        with PausedCollections():
            entered.set()
            leave.wait(10)

    other = threading.Thread(target=hold)
    other.start()
    entered.wait(10)
    with pytest.raises(ZeroDivisionError), PausedCollections():
        1 / 0  # noqa: B018
    assert not gc.isenabled()  # the other thread still holds its pause
    leave.set()
    other.join(10)
    assert gc.isenabled()
