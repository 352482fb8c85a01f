# A generator hands out mini-batches; gradients accumulate over one pass through the data.
import torch
import torch.nn.functional as F


def batches(X, y, size):
    for start in range(0, len(X), size):
        yield X[start : start + size], y[start : start + size]


torch.manual_seed(1)
X = torch.randn(12, 2)
y = (X[:, 0] > X[:, 1]).float()
w = torch.zeros(2, requires_grad=True)
b = torch.zeros(1, requires_grad=True)

for xb, yb in batches(X, y, 4):
    p = torch.sigmoid(xb @ w + b)
    loss = F.binary_cross_entropy(p, yb)
    loss.backward()  # no zero_grad: the three batches add up
print(w.grad, b.grad)
