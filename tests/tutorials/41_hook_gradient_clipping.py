# Gradient clipping with tensor hooks, registered once on each parameter, through a short loop.
import torch
from torch import nn

torch.manual_seed(8)
net = nn.Sequential(nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 1))
for p in net.parameters():
    p.register_hook(lambda g: g.clamp(-0.1, 0.1))

data = torch.randn(20, 3)
target = torch.randn(20, 1) * 5
opt = torch.optim.SGD(net.parameters(), lr=0.05)
for step in range(25):
    opt.zero_grad()
    loss = ((net(data) - target) ** 2).mean()
    loss.backward()
    opt.step()
print("largest gradient entry:", max(p.grad.abs().max().item() for p in net.parameters()))
