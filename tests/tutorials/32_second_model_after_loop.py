# Two models in one script: the first is trained, the second only takes one gradient step.
import torch
from torch import nn

torch.manual_seed(1)
inputs = torch.randn(32, 4)
targets = inputs.sum(dim=1, keepdim=True)

teacher = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
opt = torch.optim.Adam(teacher.parameters(), lr=0.05)
for step in range(120):
    opt.zero_grad()
    loss = ((teacher(inputs) - targets) ** 2).mean()
    loss.backward()
    opt.step()

student = nn.Linear(4, 1)
with torch.no_grad():
    soft_targets = teacher(inputs)
distill = ((student(inputs) - soft_targets) ** 2).mean()
distill.backward()
print(f"teacher loss {loss.item():.4f}, distill loss {distill.item():.4f}")
