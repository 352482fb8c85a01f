# micrograd checks its scalar engine against torch: build the same expression with
# torch.Tensor, run backward, and compare the value and the gradient.
import torch

x = torch.Tensor([2.0]).double()
x.requires_grad = True
u = 3 * x - 1 + x
v = u.tanh() + u * x
h = (u * v).relu()
y = h + v * x - u / 2
y.backward()

print("value", y.data.item())
print("grad", x.grad.item())
