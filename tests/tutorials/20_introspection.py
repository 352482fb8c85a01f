# Looking around an autograd graph and a model with Python's own tools.
import torch
from torch import nn

print(torch.__version__)
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
x = torch.randn(2, 3)
out = model(x).sum()

print(type(out.grad_fn).__name__)
print([name for name in dir(out.grad_fn) if not name.startswith("__")][:5])
print(hasattr(out.grad_fn, "next_functions"))

first = getattr(model, "0")
print(isinstance(first, nn.Linear), type(first).__name__)
print(id(first.weight) == id(model[0].weight))

out.backward()
print(model[0].weight.grad)
