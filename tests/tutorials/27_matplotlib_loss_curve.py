# Fit a small network to a noisy cubic and plot the loss curve.
import matplotlib.pyplot as plt
import torch

torch.manual_seed(0)
x = torch.linspace(-2, 2, 25).unsqueeze(1)
y = 0.5 * x**3 - x + 0.1 * torch.randn_like(x)

model = torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
opt = torch.optim.Adam(model.parameters(), lr=0.05)
losses = []
for step in range(60):
    opt.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    opt.step()
    losses.append(loss.item())

plt.figure(figsize=(5, 3))
plt.plot(losses)
plt.xlabel("step")
plt.ylabel("MSE")
plt.title("training loss")
plt.show()
