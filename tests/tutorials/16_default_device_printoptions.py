# Device-agnostic tutorials pick a default device first; print options keep output short.
import torch

torch.set_default_device("cpu")
torch.set_printoptions(precision=3, sci_mode=False)

x = torch.linspace(-1, 1, 5, requires_grad=True)
y = torch.sigmoid(3 * x)
print(y)

s = y.sum()
s.backward()
print(x.grad)  # 3 * sigmoid * (1 - sigmoid)
torch.set_printoptions(profile="default")
