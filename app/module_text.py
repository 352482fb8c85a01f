"""A short text for an nn.Module's box: its class and, for common layers, their sizes."""

from __future__ import annotations

from typing import Any

MAX_EXTRA = 18  # longer extra_repr texts are left out


def describe_module(module: Any) -> str:
    """'Linear(4→8)', 'Conv2d(3→16, k3)', 'Dropout(p=0.1)' or just the class name."""
    name = type(module).__name__
    try:
        if hasattr(module, "in_features") and hasattr(module, "out_features"):
            return f"{name}({module.in_features}→{module.out_features})"
        if hasattr(module, "in_channels") and hasattr(module, "out_channels"):
            kernel = getattr(module, "kernel_size", None)
            size = "×".join(map(str, kernel)) if isinstance(kernel, tuple) else kernel
            return f"{name}({module.in_channels}→{module.out_channels}, k{size})"
        if hasattr(module, "num_embeddings") and hasattr(module, "embedding_dim"):
            return f"{name}({module.num_embeddings}, {module.embedding_dim})"
        extra = module.extra_repr()
    except Exception:  # a user's module may raise anywhere; its class name still helps
        return name
    if extra and len(extra) <= MAX_EXTRA and "\n" not in extra:
        return f"{name}({extra})"
    return name
