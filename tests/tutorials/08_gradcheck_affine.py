# Extending autograd with a custom Function, then checking its backward against finite
# differences with gradcheck (which needs double precision).
import torch
from torch.autograd import gradcheck


class Affine(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        return x @ weight + bias

    @staticmethod
    def backward(ctx, grad_output):
        x, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = grad_output @ weight.t()
        if ctx.needs_input_grad[1]:
            grad_w = x.t() @ grad_output
        if ctx.needs_input_grad[2]:
            grad_b = grad_output.sum(0)
        return grad_x, grad_w, grad_b


torch.manual_seed(0)
inputs = (
    torch.randn(4, 3, dtype=torch.double),
    torch.randn(3, 2, dtype=torch.double, requires_grad=True),
    torch.randn(2, dtype=torch.double, requires_grad=True),
)
print("gradcheck:", gradcheck(Affine.apply, inputs, eps=1e-6, atol=1e-4))

x = torch.randn(5, 3)
weight = torch.randn(3, 2, requires_grad=True)
bias = torch.zeros(2, requires_grad=True)
loss = Affine.apply(x, weight, bias).pow(2).mean()
loss.backward()
print(weight.grad, bias.grad)
