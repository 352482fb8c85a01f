# A tensor hook can change the gradient on its way back; its handle removes it again.
import torch

x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
seen = []


def double_grad(grad):
    seen.append(grad.clone())
    return grad * 2


handle = x.register_hook(double_grad)
y = (x**2).sum()
y.backward()
print(x.grad)  # doubled: 4, 8, 12

handle.remove()
x.grad = None
y = (x**3).sum()
y.backward()
print(x.grad)  # 3x^2 again, the hook is gone
print(len(seen))
