# Backpropagation through time: an RNNCell unrolled over 12 steps, trained for 15 iterations.
import torch
from torch import nn

torch.manual_seed(14)
cell = nn.RNNCell(2, 8)
readout = nn.Linear(8, 1)
params = list(cell.parameters()) + list(readout.parameters())
opt = torch.optim.Adam(params, lr=0.02)
sequence = torch.randn(12, 4, 2)
target = sequence.sum(dim=(0, 2)).unsqueeze(1)
for iteration in range(15):
    h = torch.zeros(4, 8)
    for step_input in sequence:
        h = cell(step_input, h)
    loss = ((readout(h) - target) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
print(f"loss {loss.item():.4f}")
