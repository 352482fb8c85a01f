# title: y = x * w + b: leaves and gradients
# title_zh: y = x * w + b:叶子节点与梯度
# lesson: x has no requires_grad, so x.grad stays None; dy/dw = x = 3 and dy/db = 1.
# lesson_zh: x 没有 requires_grad,所以 x.grad 仍是 None;dy/dw = x = 3,dy/db = 1。
import torch

x = torch.tensor(3.)
w = torch.tensor(4., requires_grad=True)
b = torch.tensor(5., requires_grad=True)
y = x * w + b
y.backward()
print("dy/dx:", x.grad)
print("dy/dw:", w.grad)
print("dy/db:", b.grad)
