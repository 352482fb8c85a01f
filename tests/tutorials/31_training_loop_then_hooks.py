# A long training loop, then a lesson on hooks with the trained model (tutorial cell after cell).
import torch
from torch import nn

torch.manual_seed(0)
x = torch.linspace(-1, 1, 64).unsqueeze(1)
y = 3 * x - 0.5 + 0.1 * torch.randn(64, 1)

model = nn.Linear(1, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(300):
    optimizer.zero_grad()
    loss = nn.functional.mse_loss(model(x), y)
    loss.backward()
    optimizer.step()
print(f"trained: w={model.weight.item():.3f} b={model.bias.item():.3f}")

# Hooks: look at the gradient flowing through an activation, and scale it on its way back.
probe = torch.tensor([0.25, -0.5, 1.0], requires_grad=True)
hidden = model(probe.unsqueeze(1))
hidden.register_hook(lambda grad: grad * 10)
out = (hidden**2).sum()
out.backward()
print("probe.grad:", probe.grad)
