# checkpoint_sequential splits a Sequential into segments and trains it for a few steps.
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint_sequential

torch.manual_seed(11)
model = nn.Sequential(*[nn.Linear(6, 6) if i % 2 == 0 else nn.ReLU() for i in range(8)])
opt = torch.optim.SGD(model.parameters(), lr=0.01)
data = torch.randn(10, 6, requires_grad=True)
for step in range(5):
    opt.zero_grad()
    out = checkpoint_sequential(model, 2, data, use_reentrant=False)
    loss = out.pow(2).mean()
    loss.backward()
    opt.step()
print(f"loss {loss.item():.5f}")
