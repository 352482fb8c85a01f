"""What an autograd node saved for its backward: tensors (linked to their nodes) and values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from app.recorder.autograd_facts import saved_attribute_names
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
    ) -> list[SavedTensor]:
        """The saved tensors and values of autograd node fn: a tensor linked to the tensor node
        match finds, or summarised without a preview."""
        saved: list[SavedTensor] = []
        for attr in saved_attribute_names(fn):
            try:
                value = getattr(fn, attr)
            except RuntimeError:  # already freed by an earlier backward
                continue
            name = attr.removeprefix("_saved_")
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
            elif value is not None:
                text = repr(value)
                record = self._records.get((name, text))
                if record is None:
                    limit = self.max_repr
                    record = self._records[name, text] = new_saved_tensor(
                        name=name,
                        tensor=None,
                        value=None,
                        repr=text[:limit] + ("…" if len(text) > limit else ""),
                    )
                saved.append(record)
        return saved
