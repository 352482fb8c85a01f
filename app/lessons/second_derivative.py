# title: Second derivative with create_graph=True
# title_zh: 用 create_graph=True 求二阶导数
# lesson: d(x^2)/dx = 2x = 6 at x = 3; the gradient has a graph of its own, whose derivative is 2.
# lesson_zh: x = 3 时 d(x^2)/dx = 2x = 6;这个梯度有自己的计算图,再求导得 2。
import torch

x = torch.tensor([3.], requires_grad=True)
y = torch.pow(x, 2)
grad_1 = torch.autograd.grad(y, x, create_graph=True)
print("grad_1:", grad_1)
grad_2 = torch.autograd.grad(grad_1[0], x)
print("grad_2:", grad_2)
