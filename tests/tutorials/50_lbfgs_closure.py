# L-BFGS calls a closure that runs the forward and backward pass several times per step.
import torch

torch.manual_seed(15)
x = torch.linspace(-1, 1, 30)
y = torch.exp(0.7 * x) + 0.01 * torch.randn(30)
rate = torch.tensor([0.1], requires_grad=True)
optimizer = torch.optim.LBFGS([rate], lr=0.5, max_iter=10)


def closure():
    optimizer.zero_grad()
    loss = ((torch.exp(rate * x) - y) ** 2).mean()
    loss.backward()
    return loss


for epoch in range(3):
    optimizer.step(closure)
print("rate:", round(rate.item(), 4))
