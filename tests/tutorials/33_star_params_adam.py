# Fit y = a*x^2 + b*x + c with one parameter tensor unpacked into three scalars each step.
import torch

torch.manual_seed(0)
x = torch.linspace(-2, 2, 50)
y = 0.5 * x**2 - x + 2 + 0.05 * torch.randn(50)

params = torch.zeros(3, requires_grad=True)
optimizer = torch.optim.Adam([params], lr=0.1)
for step in range(150):
    a, b, c = params
    prediction = a * x**2 + b * x + c
    loss = ((prediction - y) ** 2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
print("a, b, c =", [round(v, 3) for v in params.tolist()])
