# title: In-place op on a leaf raises
# title_zh: 需要梯度的叶子节点不能原地修改
# lesson: a leaf that requires grad cannot be modified in place; the error points at its line.
# lesson_zh: 需要梯度的叶子张量不能原地修改;报错指向出错的那一行。
import torch

w = torch.tensor([1.], requires_grad=True)
x = torch.tensor([2.], requires_grad=True)
a = torch.add(w, x)
b = torch.add(w, 1)
y = torch.mul(a, b)
w.add_(1)
