# title: A neuron without backward(): the explorer runs it
# title_zh: 没有调用 backward() 的神经元:由探索器运行
# lesson: the last result is a scalar that requires grad, so the explorer runs its backward for you.
# lesson_zh: 最后的结果是需要梯度的标量,所以由探索器替你调用 backward。
import torch

x = torch.tensor([1.0, 2.0, 3.0])
w = torch.tensor([0.5, -0.25, 0.1], requires_grad=True)
b = torch.tensor(0.2, requires_grad=True)
z = torch.dot(w, x) + b
out = torch.sigmoid(z)
