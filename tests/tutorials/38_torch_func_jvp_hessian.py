# torch.func.jvp and torch.func.hessian next to create_graph double backward.
import torch
from torch.func import hessian, jvp


def energy(p):
    return (p**4).sum() / 4 + (p[0] * p[1]) ** 2


point = torch.tensor([1.0, -2.0], requires_grad=True)
_, directional = jvp(energy, (point.detach(),), (torch.tensor([1.0, 1.0]),))
H = hessian(energy)(point.detach())

g = torch.autograd.grad(energy(point), point, create_graph=True)[0]
curvature = g.sum()
curvature.backward()
print("jvp", directional.item(), "hessian row sum", H.sum(0).tolist(), "grad", point.grad.tolist())
