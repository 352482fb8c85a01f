"""Autograd Explorer: record a real autograd run and step through it."""

from __future__ import annotations

import os
from typing import Any

# Ask CUDA about devices through NVML, so that checking for CUDA in the server process does not
# initialise it: forked workers can only use CUDA when the parent never initialised it.
os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")

__version__ = "0.1.0"
__all__ = ["Exploration", "__version__", "explore", "explore_code"]

# Notebook helpers, imported on first use so that `import app` stays cheap (no torch).
_LAZY = {"explore": "app.notebook", "explore_code": "app.notebook", "Exploration": "app.notebook"}


def __getattr__(name: str) -> Any:
    """`from app import explore` loads the notebook module (and torch) only when asked."""
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'app' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
