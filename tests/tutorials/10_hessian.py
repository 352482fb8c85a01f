# Second derivatives of a scalar function: the gradient through jacobian, the curvature
# through hessian, both from torch.autograd.functional.
import torch


def energy(p):
    return p[0] ** 2 * p[1] + torch.exp(p[1]) * p[0] + p.pow(4).sum()


p = torch.tensor([0.5, -1.0], requires_grad=True)
g = torch.autograd.functional.jacobian(energy, p)
H = torch.autograd.functional.hessian(energy, p, create_graph=True)
print(g)
print(H)

weights = torch.tensor([[1.0, 0.5], [0.5, 2.0]], requires_grad=True)
score = (weights * H).sum()
score.backward()
print(weights.grad)  # the Hessian
print(p.grad)  # third derivatives contracted with the weights
