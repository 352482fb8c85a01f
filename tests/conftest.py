"""Shared fixtures: a test client and helpers to read graphs."""

from __future__ import annotations

import pytest
import torch

from app.schemas import Graph, OpNode, TensorNode


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked cuda where no CUDA device is present."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


def tensor_named(graph: Graph, name: str) -> TensorNode:
    """The last tensor node carrying a variable name."""
    found = [n for n in graph.nodes if isinstance(n, TensorNode) and n.name == name]
    assert found, f"no tensor named {name!r} in {[getattr(n, 'name', None) for n in graph.nodes]}"
    return found[-1]


def node_by_id(graph: Graph, node_id: str) -> TensorNode | OpNode:
    """A node by id."""
    return next(n for n in graph.nodes if n.id == node_id)
