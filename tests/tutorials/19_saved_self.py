# What autograd saves for backward: pow saves its input, exp saves its output.
import torch

torch.manual_seed(0)
x = torch.randn(5, requires_grad=True)
y = x.pow(2)
print(y.grad_fn._saved_self)
print(y.grad_fn._saved_self is x)  # True: the same tensor object
print(y.grad_fn._saved_exponent)  # 2

z = x.exp()
print(z.grad_fn._saved_result is z)  # True

loss = (y + z).sum()
loss.backward()
print(x.grad)  # 2x + exp(x)
