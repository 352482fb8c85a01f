# Newton's method on a 1-D function with torch.autograd.grad for first and second derivatives.
import torch

x = torch.tensor(3.0, requires_grad=True)
for i in range(12):
    f = x**4 - 3 * x**2 + x
    (df,) = torch.autograd.grad(f, x, create_graph=True)
    (d2f,) = torch.autograd.grad(df, x)
    with torch.no_grad():
        x -= df / d2f
print("stationary point:", round(x.item(), 6))
f = x**4 - 3 * x**2 + x
slope = torch.autograd.grad(f, x)
