# Forward-mode AD with dual numbers: a Jacobian-vector product, checked against reverse mode.
import torch
import torch.autograd.forward_ad as fwAD

torch.manual_seed(5)
x = torch.randn(4, requires_grad=True)
direction = torch.tensor([1.0, 0.0, -1.0, 0.5])


def f(t):
    return (t.sin() * t.exp()).sum()


with fwAD.dual_level():
    dual = fwAD.make_dual(x.detach(), direction)
    jvp = fwAD.unpack_dual(f(dual)).tangent

value = f(x)
value.backward()
print("jvp:", round(jvp.item(), 5), "reverse:", round(torch.dot(x.grad, direction).item(), 5))
