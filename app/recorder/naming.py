"""The program's names for its tensors, modules and parameters, from its variable bindings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass
class Names:
    """Variables bound to tensors, and the dotted paths of modules and their parameters."""

    # id(tensor) -> (name, line, bound at the program's top level, tensor)
    _bindings: dict[int, tuple[str, int, bool, Any]] = field(default_factory=dict)
    _modules: dict[int, tuple[str, Any]] = field(default_factory=dict)  # id -> (path, module)
    _parameters: dict[int, str] = field(default_factory=dict)  # id -> 'model.0.weight'
    _paused: dict[str, tuple[int, torch.Tensor]] = field(default_factory=dict)  # bound while paused
    last_top_tensor: torch.Tensor | None = None  # the latest tensor bound at the top level

    def name_for(self, t: torch.Tensor) -> tuple[str | None, int | None]:
        """(name, line) the program gave t; a parameter keeps its module path (model.0.weight)."""
        param = self._parameters.get(id(t)) if isinstance(t, nn.Parameter) else None
        if param is not None:
            return param, None
        binding = self._bindings.get(id(t))
        if binding is not None and binding[3] is t:
            return binding[0], binding[1]
        return None, None

    def bound_name(self, t: torch.Tensor, default: str) -> str:
        """The variable t was bound to, or default."""
        return self._bindings.get(id(t), (default,))[0]

    def name_module(self, name: str, module: nn.Module) -> None:
        """Give a module bound to a variable, its sub-modules and parameters their paths."""
        if id(module) in self._modules:
            return  # a sub-module keeps the path of the model it belongs to
        for path, sub in module.named_modules():
            self._modules.setdefault(id(sub), (f"{name}.{path}" if path else name, sub))
        self.name_parameters(module, f"{name}.")

    def name_parameters(self, module: nn.Module, prefix: str) -> None:
        """Name the parameters of module prefix + their path, unless they have a name."""
        for pname, param in module.named_parameters():
            self._parameters.setdefault(id(param), prefix + pname)

    def name_inputs(self, names: Mapping[str, torch.Tensor | nn.Module] | None) -> None:
        """Names the caller gave to tensors and modules it hands to the recorder."""
        for name, value in (names or {}).items():
            if isinstance(value, nn.Module):
                self._modules[id(value)] = (name, value)
                self.name_parameters(value, f"{name}.")
            elif isinstance(value, torch.Tensor):
                self._bindings[id(value)] = (name, 0, True, value)

    def module_path(self, module: nn.Module) -> str | None:
        """The dotted path of a module bound to a variable (or inside one)."""
        owner = self._modules.get(id(module))
        return owner[0] if owner else None

    def is_named_parameter(self, value: Any) -> bool:
        """Whether value is a parameter that already has its module path."""
        return isinstance(value, nn.Parameter) and id(value) in self._parameters

    def keep_paused(self, name: str, line: int, value: torch.Tensor) -> None:
        """A binding made while recording is paused: the latest per name (no growth)."""
        self._paused[name] = (line, value)

    def bind(self, name: str, line: int, module_scope: bool, value: torch.Tensor) -> bool:
        """Bind a tensor to a variable; False when an earlier binding keeps it (the first
        binding wins, except that the program's top level names last)."""
        previous = self._bindings.get(id(value))
        if previous is not None and previous[3] is value and (previous[2] or not module_scope):
            return False
        self._bindings[id(value)] = (name, line, module_scope, value)
        if module_scope:
            self.last_top_tensor = value
        return True

    def restore_paused(self) -> None:
        """Bind the names bound while paused, in order after the others."""
        for name, (line, t) in self._paused.items():
            self._bindings.pop(id(t), None)  # re-inserted: the latest binding comes last
            self._bindings[id(t)] = (name, line, True, t)
        self._paused = {}

    def latest_top_tensors(self) -> list[torch.Tensor]:
        """The tensor each top-level variable holds last."""
        latest: dict[str, torch.Tensor] = {}
        for name, _line, module_scope, value in self._bindings.values():
            if module_scope and isinstance(value, torch.Tensor):
                latest[name] = value
        return list(latest.values())

    def forget_tensors(self) -> None:
        """Drop the hold on the program's tensors (the recording is over)."""
        self._paused = {}
        self._bindings = {}
        self.last_top_tensor = None
