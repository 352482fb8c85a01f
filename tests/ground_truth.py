"""Run a program with plain torch (no recorder) and note every leaf's .grad after each pass."""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import numpy as np
import torch


def resolve(namespace: dict[str, Any], dotted: str) -> Any:
    """namespace['a'].b.c for 'a.b.c'; None when any part is missing."""
    head, *rest = dotted.split(".")
    value = namespace.get(head)
    for part in rest:
        value = getattr(value, part, None)
    return value


def run_plain(
    code: str, names: list[str], seed: int = 0, add_backward: bool = False
) -> list[dict[str, Any]]:
    """Per backward/grad call: {'grads': {name: .grad list}, 'results': [grad lists]}."""
    namespace: dict[str, Any] = {"__name__": "program", "print": lambda *a, **k: None}
    passes: list[dict[str, Any]] = []
    real_backward, real_grad = torch.Tensor.backward, torch.autograd.grad

    def snapshot(results: Any = None) -> None:
        grads = {}
        for name in names:
            t = resolve(namespace, name)
            if isinstance(t, torch.Tensor) and t.is_leaf and t.grad is not None:
                grads[name] = t.grad.detach().clone().tolist()
        out = [r.detach().clone().tolist() for r in results] if results is not None else None
        passes.append({"grads": grads, "results": out})

    def backward(self: torch.Tensor, *args: Any, **kwargs: Any) -> None:
        real_backward(self, *args, **kwargs)
        snapshot()

    def grad(*args: Any, **kwargs: Any) -> Any:
        result = real_grad(*args, **kwargs)
        snapshot(result)
        return result

    torch.manual_seed(seed)
    np.random.seed(seed)
    with contextlib.ExitStack() as stack:
        stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("ignore")  # the lessons read non-leaf .grad on purpose
        stack.callback(setattr, torch.Tensor, "backward", real_backward)
        stack.callback(setattr, torch.autograd, "grad", real_grad)
        torch.Tensor.backward = backward
        torch.autograd.grad = grad
        try:
            exec(compile(code, "<plain>", "exec"), namespace)
        except RuntimeError:
            pass
    if add_backward:
        return [{"grads": {}, "results": None, "namespace": namespace}]
    return passes
