"""The loss rules: nll_loss's one-hot gradient as torch gives it."""

from __future__ import annotations

import pytest
import torch

from app.loss_rules import _one_hot_rows


def _one_hot_row_by_row(
    shape: list[int], targets: torch.Tensor, grad: torch.Tensor, reduction: int, total: float
) -> torch.Tensor:
    """The nll_loss gradient written out one row at a time (ignore_index -100)."""
    value = torch.zeros(shape, dtype=torch.float64)
    rows = value.reshape(-1, shape[-1]) if len(shape) > 1 else value.reshape(1, -1)
    targets = targets.reshape(-1).long()
    per_row = grad.reshape(-1) if reduction == 0 else grad.reshape(1).expand(len(targets))
    for i, target in enumerate(targets.tolist()):
        if target != -100:
            rows[i, target] = -per_row[i] / total
    return value


@pytest.mark.parametrize("reduction", [0, 1, 2])
def test_one_hot_rows_match_the_row_by_row_definition(reduction: int) -> None:
    generator = torch.Generator().manual_seed(reduction)
    for rows, classes in [(8, 3), (1, 5), (5, 1)]:
        targets = torch.randint(0, classes, (rows,), generator=generator)
        targets[rows // 2] = -100  # an ignored row
        grad = torch.randn(rows if reduction == 0 else (), generator=generator, dtype=torch.float64)
        total = 7.0 if reduction == 1 else 1.0
        expected = _one_hot_row_by_row([rows, classes], targets, grad, reduction, total)
        value = _one_hot_rows([rows, classes], targets, grad, reduction, total, -100)
        assert torch.equal(value, expected) and torch.equal(value.signbit(), expected.signbit())
    vector = _one_hot_rows([4], torch.tensor(2), torch.tensor(3.0, dtype=torch.float64), 1, 1, -1)
    assert vector.tolist() == [0.0, 0.0, -3.0, 0.0]  # one unbatched row


def test_one_hot_rows_refuse_targets_without_rows() -> None:
    with pytest.raises(IndexError):
        _one_hot_rows([2, 3], torch.tensor([0, 1, 2]), torch.ones(3), 0, 1.0, -100)
    with pytest.raises(IndexError):
        _one_hot_rows([2, 3], torch.tensor([0, 5]), torch.ones(2), 0, 1.0, -100)
