# A while loop with early stopping, then a final check of the gradient at the solution.
import torch

torch.manual_seed(17)
A = torch.randn(6, 3)
b = torch.randn(6)
x = torch.zeros(3, requires_grad=True)
opt = torch.optim.SGD([x], lr=0.05)
step = 0
previous = float("inf")
while step < 500:
    opt.zero_grad()
    loss = ((A @ x - b) ** 2).sum()
    loss.backward()
    opt.step()
    if previous - loss.item() < 1e-7:
        break
    previous = loss.item()
    step += 1

final = ((A @ x - b) ** 2).sum()
final.backward()
print("stopped after", step, "steps; gradient norm", round(x.grad.norm().item(), 4))
