# A model written as a function of *params, as in "autograd from scratch" notebooks.
import torch


def model(t, *params):
    w1, b1, w2 = params
    return torch.tanh(t * w1 + b1) * w2


torch.manual_seed(2)
t = torch.linspace(0, 1, 20)
target = torch.sin(3 * t)
params = [torch.randn((), requires_grad=True) for _ in range(3)]
optimizer = torch.optim.SGD(params, lr=0.2, momentum=0.9)
for i in range(60):
    loss = ((model(t, *params) - target) ** 2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
print(f"loss after 60 steps: {loss.item():.5f}")
