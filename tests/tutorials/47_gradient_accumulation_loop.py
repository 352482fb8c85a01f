# Gradient accumulation: 4 micro-batches per optimizer step, 16 steps, then an evaluation.
import torch
from torch import nn

torch.manual_seed(13)
model = nn.Linear(5, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.05)
data = torch.randn(64, 5)
target = data @ torch.tensor([[1.0], [-2.0], [0.5], [0.0], [3.0]])
accumulate = 4
for step in range(16):
    opt.zero_grad()
    for micro in range(accumulate):
        rows = slice(micro * 16, (micro + 1) * 16)
        loss = ((model(data[rows]) - target[rows]) ** 2).mean() / accumulate
        loss.backward()
    opt.step()

model.zero_grad()
eval_loss = ((model(data) - target) ** 2).mean()
eval_loss.backward()
print(f"eval loss {eval_loss.item():.4f}")
