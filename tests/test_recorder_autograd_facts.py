"""What the recorder reads off torch calls."""

from __future__ import annotations

import pytest
import torch

from app.recorder import (
    writes_in_place,
)


@pytest.mark.parametrize(
    ("func", "kwargs", "writes"),
    [
        (torch.Tensor.add_, {}, True),
        (torch.Tensor.__iadd__, {}, True),
        (torch.Tensor.__setitem__, {}, True),
        (torch._foreach_add_, {}, True),
        (torch.add, {"out": torch.zeros(1)}, True),
        (torch.Tensor.add, {}, False),
        (torch.Tensor.__add__, {}, False),
        (torch.add, {"out": None}, False),
    ],
)
def test_writes_in_place(func: object, kwargs: dict, writes: bool) -> None:
    assert writes_in_place(func, kwargs) is writes
