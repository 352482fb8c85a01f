"""What an autograd node saved for its backward: tensors (linked to their nodes) and values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from app.recorder.autograd_facts import node_kind
from app.records import maker
from app.schemas import SavedTensor, TensorData

new_saved_tensor = maker(SavedTensor)


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
                saved.append(
                    new_saved_tensor(
                        name=name,
                        tensor=linked,
                        value=None if linked else summary(value, preview=False),
                        repr=None,
                    )
                )
                continue
            text = repr(value)
            record = records.get((name, text))
            if record is None:
                limit = self.max_repr
                record = records[name, text] = new_saved_tensor(
                    name=name,
                    tensor=None,
                    value=None,
                    repr=text[:limit] + ("…" if len(text) > limit else ""),
                )
            saved.append(record)
        return saved
