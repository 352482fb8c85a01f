"""What an autograd node saved for its backward: tensors (linked to their nodes) and values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from app.recorder.autograd_facts import node_kind, storage_key
from app.recorder.records import saved_tensor_record
from app.schemas import SavedTensor, TensorData


class SavedValues:
    """The saved tensors and values of autograd nodes; one record per name and value, shared
    by every node that saved it."""

    def __init__(self, max_repr: int) -> None:
        self.max_repr = max_repr
        self._records: dict[tuple[str, str], SavedTensor] = {}

    def of(
        self,
        fn: Any,
        match: Callable[[torch.Tensor], str | None],
        summary: Callable[..., TensorData],
        attributes: tuple[tuple[str, str], ...] | None = None,
    ) -> list[SavedTensor]:
        """The saved tensors and values of autograd node fn (its NodeKind's attributes, when
        given): a tensor linked to the tensor node match finds, or summarised without a
        preview."""
        saved: list[SavedTensor] = []
        records = self._records
        if attributes is None:
            attributes = node_kind(fn).saved
        for attr, name in attributes:
            try:
                value = getattr(fn, attr)
            except RuntimeError:  # already freed by an earlier backward
                continue
            if value is None:
                continue
            if isinstance(value, torch.Tensor):
                linked = match(value)
                value = None if linked else summary(value, preview=False)
                saved.append(saved_tensor_record(name, linked, value, None))
                continue
            text = repr(value)
            record = records.get((name, text))
            if record is None:
                limit = self.max_repr
                shown = text[:limit] + ("…" if len(text) > limit else "")
                record = records[name, text] = saved_tensor_record(name, None, None, shown)
            saved.append(record)
        return saved


class TensorMemory:
    """The tensor node whose memory a tensor views: the same storage key, the same values
    (while both are alive), for a saved tensor that is another object than its node's."""

    def __init__(self) -> None:
        self._node_of_storage: dict[tuple[Any, ...], str] = {}
        self._pointers: set[int] = set()  # of the keys: a quick no for most saved tensors

    def remember(self, t: torch.Tensor, node_id: str) -> None:
        """t's memory is that of node node_id (the latest node to view it)."""
        storage = storage_key(t) if t.numel() else None
        if storage is not None:
            self._node_of_storage[storage] = node_id
            self._pointers.add(storage[0])

    def node_of(self, t: torch.Tensor) -> str | None:
        """The node remembered for t's memory, if any."""
        if t.layout is not torch.strided or t.is_nested or not t.numel():
            return None  # storage_key(t) is None, or no key of an empty tensor is kept
        try:
            pointer = t.data_ptr()
        except (RuntimeError, NotImplementedError):
            return None  # no storage of its own (storage_key(t) is None)
        if pointer not in self._pointers:
            return None  # not the memory of any tensor node
        storage = storage_key(t)
        return None if storage is None else self._node_of_storage.get(storage)
