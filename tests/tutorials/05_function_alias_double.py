# A custom autograd Function, declared through a short alias as some tutorials do.
import torch

Function = torch.autograd.Function


class Double(Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output * 2


x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
y = Double.apply(x)
z = Double.apply(y * y).sum()
print(z)
z.backward()
print(x.grad)  # d/dx 2 * (2x)^2 = 16x
