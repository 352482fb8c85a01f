# A private random generator makes the initial weights and the data reproducible.
import torch

g = torch.Generator().manual_seed(2024)
w = torch.randn(3, 2, generator=g, requires_grad=True)
x = torch.rand(4, 3, generator=g)
noise = torch.randn(4, 2, generator=g)

out = torch.tanh(x @ w) + 0.1 * noise
loss = out.pow(2).mean()
loss.backward()
print(g.initial_seed(), loss.item())
print(w.grad)
