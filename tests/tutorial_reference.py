"""Run one tutorial program in plain Python and write the gradients it leaves as JSON.

Usage: python -m tests.tutorial_reference PROGRAM.py OUT.json

The program runs as `python PROGRAM.py` would run it (``__name__ == "__main__"``), after the
seeds the explorer uses by default (torch and numpy seeded with 0). Afterwards every leaf that
requires grad and is reachable by a name is written out with its ``.grad``, named the way the
explorer names it: a parameter by its module path (``model.0.weight``, from the module
variable with the most parameters), another tensor by the first top-level variable that holds
it, or by ``list[i]`` when only a list holds it. The program's own calls of ``backward()`` and
``torch.autograd.grad()`` are noted too, with what the last ``grad()`` call returned.
"""

from __future__ import annotations

import builtins
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

MAX_LIST_ITEMS = 64  # longer lists are not named item by item


def _from_program(filename: str) -> bool:
    """True when the caller of the wrapped function is code of the program itself."""
    return sys._getframe(2).f_code.co_filename == filename


def _as_list(value: torch.Tensor | None) -> Any:
    """The values as nested lists; complex values by their magnitude, as the explorer shows
    them; a sparse tensor by its dense values."""
    if value is None:
        return None
    value = value.detach().cpu()
    if value.layout is not torch.strided:
        value = value.to_dense()
    return (value.abs() if value.is_complex() else value).tolist()


def watch_gradient_calls(filename: str, events: list[dict[str, Any]]) -> None:
    """Note each backward() / autograd.grad() the program calls, in order."""
    real_tensor_backward = torch.Tensor.backward
    real_backward = torch.autograd.backward
    real_grad = torch.autograd.grad

    def tensor_backward(self: torch.Tensor, *args: Any, **kwargs: Any) -> None:
        mine = _from_program(filename)
        real_tensor_backward(self, *args, **kwargs)
        if mine:
            events.append({"kind": "backward"})

    def backward(*args: Any, **kwargs: Any) -> None:
        mine = _from_program(filename)
        real_backward(*args, **kwargs)
        if mine:
            events.append({"kind": "backward"})

    def grad(*args: Any, **kwargs: Any) -> Any:
        mine = _from_program(filename)
        result = real_grad(*args, **kwargs)
        if mine:
            events.append({"kind": "grad", "results": [_as_list(g) for g in result]})
        return result

    torch.Tensor.backward = tensor_backward  # type: ignore[method-assign]
    torch.autograd.backward = backward
    torch.autograd.grad = grad


def named_tensors(namespace: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Every tensor reachable from the program's top level, by the name the explorer gives it."""
    names: dict[int, str] = {}
    tensors: dict[int, torch.Tensor] = {}
    modules = [(var, value) for var, value in namespace.items() if isinstance(value, nn.Module)]
    modules.sort(key=lambda item: -len(list(item[1].parameters())))  # stable: ties keep order
    for var, module in modules:
        for path, param in module.named_parameters():
            names.setdefault(id(param), f"{var}.{path}")
            tensors[id(param)] = param
    for var, value in namespace.items():
        if isinstance(value, torch.Tensor):
            found = [(var, value)]
        elif isinstance(value, (list, tuple)) and len(value) <= MAX_LIST_ITEMS:
            found = [(f"{var}[{i}]", v) for i, v in enumerate(value) if isinstance(v, torch.Tensor)]
        else:
            continue
        for name, t in found:
            names.setdefault(id(t), name)
            tensors[id(t)] = t
    return {name: tensors[key] for key, name in names.items()}


def leaf_gradients(namespace: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Shape, dtype and .grad of every named leaf that requires grad."""
    return {
        name: {
            "shape": list(t.shape),
            "dtype": str(t.dtype).removeprefix("torch."),
            "grad": _as_list(t.grad),
        }
        for name, t in named_tensors(namespace).items()
        if _is_leaf(t) and t.requires_grad
    }


def _is_leaf(t: torch.Tensor) -> bool:
    """Whether t is a leaf; a view made stale by an in-place change of its base is not one."""
    try:
        return t.is_leaf
    except RuntimeError:
        return False


def run(program: Path) -> dict[str, Any]:
    """Run the program and return its leaves' gradients and its gradient calls."""
    filename = str(program.resolve())
    code = compile(program.read_text(encoding="utf-8"), filename, "exec")
    events: list[dict[str, Any]] = []
    watch_gradient_calls(filename, events)
    torch.manual_seed(0)
    np.random.seed(0)
    namespace: dict[str, Any] = {
        "__name__": "__main__",
        "__file__": filename,
        "__builtins__": builtins,
    }
    exec(code, namespace)
    return {"leaves": leaf_gradients(namespace), "events": events}


def main(argv: list[str]) -> int:
    """Entry point: PROGRAM OUT."""
    program, out = Path(argv[0]), Path(argv[1])
    result = run(program)
    out.write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
