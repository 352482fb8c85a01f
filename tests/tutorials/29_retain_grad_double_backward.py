# Non-leaf gradients need retain_grad(); backward(create_graph=True) keeps the graph of
# the gradient so it can be differentiated again.
import torch

x = torch.tensor(2.0, requires_grad=True)
w = torch.tensor(3.0, requires_grad=True)
h = x * w
h.retain_grad()
y = h**2
print(x.is_leaf, h.is_leaf, h.grad_fn)

y.backward(create_graph=True)
print(h.grad, x.grad, w.grad)  # 2h = 12, 2hw = 36, 2hx = 24

gx = x.grad  # 2 x w^2, itself part of a graph
x.grad = None
w.grad = None
gx.backward()
print(x.grad, w.grad)  # 2 w^2 = 18, 4 x w = 24
