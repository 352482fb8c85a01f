# The larger micrograd-style check: two inputs, powers, division and relu, in double
# precision, so the scalar engine can be compared with torch to many digits.
import torch

a = torch.Tensor([-3.0]).double()
b = torch.Tensor([1.5]).double()
a.requires_grad = True
b.requires_grad = True
c = a * b + b**3
d = c + c * 2 + (a + b).relu()
d = d + (b - a).relu() * 3
e = c - d
f = e**2
g = f / 4.0
g = g + 5.0 / f
g.backward()

print(g.data.item(), a.grad.item(), b.grad.item())
