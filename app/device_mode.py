"""Put the tensors a program creates on its device, drawing random numbers as on the CPU.

`with torch.device("cuda")` alone would draw from the CUDA generator, so one seed would give other
numbers on a GPU than on the CPU. Here random tensors are drawn on the CPU and moved, so a lesson
shows the same values and gradients on every device.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch.utils._device import DeviceContext

RANDOM_FACTORIES = frozenset({torch.rand, torch.randn, torch.randint, torch.randperm, torch.normal})
RANDOM_LIKE = frozenset({torch.rand_like, torch.randn_like, torch.randint_like})
RANDOM_IN_PLACE = frozenset(
    getattr(torch.Tensor, name)
    for name in (
        "uniform_",
        "normal_",
        "bernoulli_",
        "random_",
        "exponential_",
        "geometric_",
        "log_normal_",
        "cauchy_",
    )
)


# nn.init functions reach the mode as themselves: the draws inside them would escape it
RANDOM_INIT = frozenset(
    getattr(torch.nn.init, name)
    for name in dir(torch.nn.init)
    if name.endswith("_") and not name.startswith("_") and callable(getattr(torch.nn.init, name))
)


def _cpu_generator(kwargs: dict[str, Any]) -> bool:
    generator = kwargs.get("generator")
    return generator is None or generator.device.type == "cpu"


def _on(device: torch.device, t: torch.Tensor, requires_grad: bool) -> torch.Tensor:
    moved = t.to(device)
    return moved.requires_grad_() if requires_grad else moved


class SameSeedDevice(DeviceContext):
    """torch.device(...) as a context, with random numbers drawn by the CPU generator."""

    def __torch_function__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        if kwargs.get("out") is None and _cpu_generator(kwargs):
            if (
                func in RANDOM_FACTORIES
                and kwargs.get("device") is None
                and not (args and isinstance(args[0], torch.Tensor))  # normal(mean_tensor, ...)
            ):
                requires_grad = bool(kwargs.pop("requires_grad", False))
                drawn = func(*args, **{**kwargs, "device": "cpu"})
                return _on(self.device, drawn, requires_grad)
            if func in RANDOM_LIKE and args and kwargs.get("device") is None:
                requires_grad = bool(kwargs.pop("requires_grad", False))
                drawn = func(*args, **{**kwargs, "device": "cpu"})
                return _on(args[0].device, drawn, requires_grad)
            target = args[0] if args else kwargs.get("tensor")
            in_place = func in RANDOM_IN_PLACE or func in RANDOM_INIT
            if in_place and isinstance(target, torch.Tensor) and target.device.type != "cpu":
                noise = torch.empty(target.shape, dtype=target.dtype, device="cpu")
                rest = [a.cpu() if isinstance(a, torch.Tensor) else a for a in args[1:]]
                options = {k: v for k, v in kwargs.items() if k != "tensor"}
                with torch.no_grad():
                    func(noise, *rest, **options)
                if func in RANDOM_INIT:  # nn.init writes without autograd, like the original
                    with torch.no_grad():
                        return target.copy_(noise)
                return target.copy_(noise)
        return super().__torch_function__(func, types, args, kwargs)


def device_context(device: torch.device) -> AbstractContextManager[Any]:
    """The default-device context for a run on device; none for the CPU, already the default.

    (A device context is a torch function mode: on the CPU it would only add a Python call to
    every torch call of the program and of the recorder.)
    """
    return nullcontext() if device.type == "cpu" else SameSeedDevice(device)
