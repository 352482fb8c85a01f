# Activation checkpointing: blocks recompute their forward during backward to save memory.
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

torch.manual_seed(10)
blocks = nn.ModuleList([nn.Sequential(nn.Linear(8, 8), nn.GELU()) for _ in range(3)])
head = nn.Linear(8, 1)

x = torch.randn(4, 8, requires_grad=True)
h = x
for block in blocks:
    h = checkpoint(block, h, use_reentrant=False)
loss = head(h).sum()
loss.backward()
print("x.grad row 0:", [round(v, 4) for v in x.grad[0].tolist()])
