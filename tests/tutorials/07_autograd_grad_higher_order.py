# torch.autograd.grad returns gradients instead of filling .grad; with create_graph=True
# the result can be differentiated again.
import torch
from torch.autograd import grad

x = torch.tensor(2.0, requires_grad=True)
w = torch.tensor(-1.5, requires_grad=True)
y = w * x**3

(dy_dx,) = grad(y, x, create_graph=True)  # 3 w x^2 = -18
(d2y_dx2,) = grad(dy_dx, x, create_graph=True)  # 6 w x = -18
print(dy_dx, d2y_dx2)

d3_x, d3_w = grad(d2y_dx2, [x, w])  # 6 w = -9 and 6 x = 12
print(d3_x, d3_w)
