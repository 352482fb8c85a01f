# Data from Python's random module, mini-batch SGD on a line, then the gradient at the fit.
import random

import torch

random.seed(1)
xs = [random.uniform(-1, 1) for _ in range(20)]
ys = [3 * x - 0.5 + random.gauss(0, 0.1) for x in xs]
x = torch.tensor(xs)
y = torch.tensor(ys)

a = torch.tensor(0.0, requires_grad=True)
c = torch.tensor(0.0, requires_grad=True)
lr = 0.2
order = list(range(len(xs)))
for epoch in range(3):
    random.shuffle(order)
    for start in range(0, len(order), 5):
        idx = torch.tensor(order[start : start + 5])
        loss = ((a * x[idx] + c - y[idx]) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            a -= lr * a.grad
            c -= lr * c.grad
        a.grad.zero_()
        c.grad.zero_()

loss = ((a * x + c - y) ** 2).mean()
loss.backward()
print(a.item(), c.item(), a.grad, c.grad)
