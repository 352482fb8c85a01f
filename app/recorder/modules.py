"""The nn.Module whose forward is running, as a box path: one box per call of a module."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from app.module_text import describe_module
from app.recorder.naming import Names
from app.schemas import Graph


@dataclass
class ModuleStack:
    """The modules whose forward is running, outermost first, each as (names of the outermost
    module's sub-modules, its box, its path)."""

    graph: Graph
    names: Names
    _stack: list[tuple[dict[int, str], str, str]] = field(default_factory=list)
    _calls: dict[str, int] = field(default_factory=dict)
    _paths_of_root: dict[int, dict[int, str]] = field(default_factory=dict)
    _root_name: str | None = None  # the variable holding the outermost module called

    def current(self) -> str | None:
        """Dotted path of the nn.Module whose forward is running, relative to the outermost one."""
        if not self._stack:
            return None
        return self._stack[-1][1] or None

    def entered(self, module: nn.Module) -> None:
        """Forward pre-hook of every module: push its path."""
        if not self._stack:
            names = self._paths_of_root.get(id(module))
            if names is None:
                names = {id(m): n for n, m in module.named_modules()}
                self._paths_of_root[id(module)] = names
                owner = self.names.module_path(module)
                self.names.name_parameters(module, f"{owner}." if owner else "")
            self._stack.append((names, "", ""))
            self._calls = {}  # calls are counted within one call of the outermost module
            self._root_name = self.names.module_path(module)
            return
        names, parent_box, parent_path = self._stack[-1]
        path = names.get(id(module), type(module).__name__)
        inside = path
        if parent_box != parent_path and path.startswith(parent_path + "."):
            inside = parent_box + path[len(parent_path) :]  # in a repeated call: 'block#2.fc'
        calls = self._calls.get(inside, 0) + 1
        self._calls[inside] = calls
        box = inside if calls == 1 else f"{inside}#{calls}"  # one box per call of a module
        if box not in self.graph.modules:
            self.graph.modules[box] = describe_module(module)
            if self._root_name:  # the box reads as the parameters do: model.0, model.0.weight
                self.graph.module_paths[box] = f"{self._root_name}.{box}"
        self._stack.append((names, box, path))

    def left(self) -> None:
        """Forward hook of every module: pop its path."""
        if self._stack:
            self._stack.pop()

    def clear(self) -> None:
        """Forget the modules running (the recording stops inside them)."""
        self._stack.clear()


class ModuleHooks:
    """Process-wide nn.Module forward hooks that keep a ModuleStack, in while recording."""

    def __init__(
        self,
        modules: ModuleStack,
        when_stopped: list[Callable[[], None]],
        when_resumed: list[Callable[[], None]],
    ) -> None:
        self.modules = modules
        self.when_stopped = when_stopped
        self.when_resumed = when_resumed
        self.handles: list[Any] = []

    def __enter__(self) -> ModuleHooks:
        self.add()
        # global hooks send every module call down torch's slow path: drop them once the
        # recording stops, so the rest of a training loop runs at nearly its own speed
        self.when_stopped.append(self.remove)
        self.when_resumed.append(self.add)
        return self

    def add(self) -> None:
        """Put the hooks in (once)."""
        if self.handles:
            return
        modules = self.modules
        self.handles = [
            nn.modules.module.register_module_forward_pre_hook(
                lambda module, args: modules.entered(module)
            ),
            nn.modules.module.register_module_forward_hook(
                lambda module, args, out: modules.left(), always_call=True
            ),
        ]

    def remove(self) -> None:
        """Take the hooks out (again harmless)."""
        for handle in self.handles:
            handle.remove()
        self.handles = []

    def __exit__(self, *exc: object) -> None:
        self.when_resumed.clear()
        self.remove()
