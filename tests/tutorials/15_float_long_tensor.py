# Legacy constructors: FloatTensor for inputs and weights, LongTensor for class labels.
import torch
import torch.nn.functional as F

torch.manual_seed(0)
inputs = torch.FloatTensor([[0.2, -1.0, 0.5], [1.5, 0.3, -0.7], [0.0, 0.8, 0.1], [-1.2, 0.4, 0.9]])
targets = torch.LongTensor([2, 0, 1, 1])

W = torch.FloatTensor(3, 3).uniform_(-0.5, 0.5)
W.requires_grad_()
b = torch.FloatTensor([0.0, 0.0, 0.0])
b.requires_grad_()

logits = inputs @ W + b
loss = F.cross_entropy(logits, targets)
loss.backward()
print(loss.item())
print(W.grad, b.grad)
