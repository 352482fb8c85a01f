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


class _Twice(torch.autograd.Function):
    @staticmethod
    def forward(ctx: object, x: torch.Tensor) -> torch.Tensor:
        return x * 2

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> torch.Tensor:
        return grad * 2


def test_node_kind_is_shared_by_the_nodes_of_a_class() -> None:
    from app.recorder.autograd_facts import node_kind

    x = torch.ones(2, requires_grad=True)
    first, second = (x * 3).grad_fn, (x * 4).grad_fn
    kind = node_kind(first)
    assert node_kind(second) is kind
    assert (kind.name, kind.op, kind.accumulates) == ("MulBackward0", "mul", False)
    assert ("_saved_other", "other") in kind.saved and ("_saved_self", "self") in kind.saved
    leaf = first.next_functions[0][0]
    assert (node_kind(leaf).name, node_kind(leaf).accumulates) == ("AccumulateGrad", True)
    custom = node_kind(_Twice.apply(x).grad_fn)
    assert (custom.name, custom.op, custom.accumulates) == ("_TwiceBackward", "_Twice", False)
