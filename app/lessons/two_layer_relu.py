# title: Two-layer ReLU network with raw tensors
# title_zh: 用张量手写两层 ReLU 网络
# lesson: autograd computes the backward pass of mm, clamp and the squared error for us.
# lesson_zh: autograd 替我们算出 mm、clamp 和平方误差的反向传播。
import torch

torch.manual_seed(0)
N, D_in, H, D_out = 4, 3, 5, 2
x = torch.randn(N, D_in)
y = torch.randn(N, D_out)
w1 = torch.randn(D_in, H, requires_grad=True)
w2 = torch.randn(H, D_out, requires_grad=True)
learning_rate = 1e-2
for t in range(3):
    h = x.mm(w1)
    h_relu = h.clamp(min=0)
    y_pred = h_relu.mm(w2)
    loss = (y_pred - y).pow(2).sum()
    print(t, loss.item())
    loss.backward()
    with torch.no_grad():
        w1 -= learning_rate * w1.grad
        w2 -= learning_rate * w2.grad
        w1.grad.zero_()
        w2.grad.zero_()
