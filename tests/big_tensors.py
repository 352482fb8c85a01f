"""Tensors bigger than a block of the summaries' work, shared by their tests."""

from __future__ import annotations

import torch


def big_tensors() -> list[torch.Tensor]:
    """Tensors bigger than a block of work, laid out in every way the block paths tell apart."""
    torch.manual_seed(5)
    side = 512
    grad_like = torch.randn(side, side * 2) * 1e-4 + 3e-9  # mean far below its values
    with_zero = torch.relu(torch.randn(300, 600))
    with_zero.view(-1)[::7] = -0.0
    return [
        grad_like,
        grad_like.t(),  # dense, not contiguous
        torch.randn(3, 400, 500)[1].t(),  # dense, transposed, past the start of its storage
        torch.randn(1).expand(200_000),  # one value seen 200,000 times
        torch.randint(-9, 9, (300_000,)),  # whole numbers, in double
        torch.randn(600, 700)[:, ::2],  # neither: copied
        torch.randn(160_000, dtype=torch.float64) * 1e3 + 7,
        with_zero,
        torch.full((140_000,), 0.1),
        torch.cat([torch.randn(150_000), torch.tensor([float("inf")])]),
        torch.cat([torch.randn(150_000), torch.tensor([float("nan")])]),
    ]
