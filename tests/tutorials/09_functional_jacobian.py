# torch.autograd.functional computes whole Jacobians; with create_graph=True the Jacobian
# itself can be trained on, as in a contractive penalty.
import torch
from torch.autograd import functional


def f(x):
    return torch.stack([x[0] ** 2 * x[1], 5 * x[0] + torch.sin(x[1]), x[0] * x[1]])


x = torch.tensor([1.0, 2.0], requires_grad=True)
J = functional.jacobian(f, x, create_graph=True)
print(J.shape)  # 3 outputs by 2 inputs

scale = torch.tensor([[1.0, 0.5], [-1.0, 2.0], [0.25, 0.0]], requires_grad=True)
penalty = (scale * J).sum()
penalty.backward()
print(scale.grad)  # the Jacobian itself
print(x.grad)
