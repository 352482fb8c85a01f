"""Linear regression with typed helpers, as in tutorials that target several Python versions."""

from __future__ import annotations

import torch


def predict(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return x @ w + b


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return ((pred - target) ** 2).mean()


torch.manual_seed(0)
X = torch.randn(8, 3)
true_w = torch.tensor([2.0, -3.4, 1.0])
y = X @ true_w + 4.2

w = torch.zeros(3, requires_grad=True)
b = torch.zeros(1, requires_grad=True)
loss = mse(predict(X, w, b), y)
loss.backward()
print(loss.item(), w.grad, b.grad)
