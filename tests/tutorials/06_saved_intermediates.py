# Saving intermediate results: forward returns exp(x) and exp(-x) as extra outputs so that
# backward can reuse them and double backward still works (checked with gradgradcheck).
import torch
from torch.autograd import Function


class Cosh(Function):
    @staticmethod
    def forward(ctx, x):
        exp_x = torch.exp(x)
        exp_neg = torch.exp(-x)
        ctx.save_for_backward(exp_x, exp_neg)
        return (exp_x + exp_neg) / 2, exp_x, exp_neg

    @staticmethod
    def backward(ctx, grad_out, _grad_out_exp, _grad_out_negexp):
        exp_x, exp_neg = ctx.saved_tensors
        grad_input = grad_out * (exp_x - exp_neg) / 2
        grad_input = grad_input + _grad_out_exp * exp_x
        grad_input = grad_input - _grad_out_negexp * exp_neg
        return grad_input


def cosh(x):
    return Cosh.apply(x)[0]


x = torch.rand(3, 3, dtype=torch.double, requires_grad=True)
print("gradcheck", torch.autograd.gradcheck(cosh, x))
print("gradgradcheck", torch.autograd.gradgradcheck(cosh, x))

c, e, _ = Cosh.apply(x)
out = (c + 0.5 * e).sum()
out.backward()
print(x.grad)  # sinh(x) + 0.5 * exp(x)
