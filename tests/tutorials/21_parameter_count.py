# Counting parameters with a generator expression, then the gradient norm the same way.
import torch
from torch import nn

torch.manual_seed(0)
net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
total = sum(p.numel() for p in net.parameters())
trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
print(f"{total} parameters, {trainable} trainable")

x = torch.randn(5, 4)
target = torch.tensor([0, 2, 1, 1, 0])
loss = nn.functional.cross_entropy(net(x), target)
loss.backward()

grad_norm = sum(p.grad.pow(2).sum() for p in net.parameters()) ** 0.5
print(float(grad_norm))
