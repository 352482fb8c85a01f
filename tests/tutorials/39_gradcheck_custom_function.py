# A custom autograd.Function checked with gradcheck and gradgradcheck before it is used.
import torch
from torch.autograd import Function, gradcheck, gradgradcheck


class Cube(Function):
    @staticmethod
    def forward(ctx, t):
        ctx.save_for_backward(t)
        return t**3

    @staticmethod
    def backward(ctx, grad_output):
        (t,) = ctx.saved_tensors
        return grad_output * 3 * t**2


torch.manual_seed(6)
probe = torch.randn(5, dtype=torch.double, requires_grad=True)
print("gradcheck:", gradcheck(Cube.apply, (probe,)))
print("gradgradcheck:", gradgradcheck(Cube.apply, (probe,)))

x = torch.tensor([1.0, -1.0, 2.0], requires_grad=True)
y = Cube.apply(x).sum()
y.backward()
print("x.grad:", x.grad)
