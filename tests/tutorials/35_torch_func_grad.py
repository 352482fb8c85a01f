# torch.func.grad computes a gradient as a function; autograd's backward gives the same numbers.
import torch
from torch.func import grad


def loss_fn(w, x, y):
    return ((x @ w - y) ** 2).mean()


torch.manual_seed(3)
x = torch.randn(16, 3)
y = torch.randn(16)
w = torch.randn(3, requires_grad=True)

functional_grad = grad(loss_fn)(w, x, y)
loss = loss_fn(w, x, y)
loss.backward()
print("same gradient:", torch.allclose(functional_grad, w.grad))
