# gradcheck perturbs every input element in turn: hundreds of calls of the function it checks.
import torch
from torch.autograd import gradcheck

torch.manual_seed(7)
A = torch.randn(12, 12, dtype=torch.double, requires_grad=True)
B = torch.randn(12, 12, dtype=torch.double, requires_grad=True)


def layer(a, b):
    return torch.tanh(a @ b).sum(dim=1)


ok = gradcheck(layer, (A, B), eps=1e-6, atol=1e-4)
loss = layer(A, B).pow(2).sum()
loss.backward()
print("gradcheck passed:", ok, "| A.grad norm:", round(A.grad.norm().item(), 6))
