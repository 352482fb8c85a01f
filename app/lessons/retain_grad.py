# title: is_leaf and retain_grad()
# title_zh: is_leaf 与 retain_grad()
# lesson: a non-leaf's .grad stays None after backward unless retain_grad() was called on it.
# lesson_zh: 反向传播后,非叶子张量的 .grad 仍是 None,除非先调用 retain_grad()。
import torch

w = torch.tensor([1.], requires_grad=True)
x = torch.tensor([2.], requires_grad=True)
a = torch.add(w, x)
a.retain_grad()
b = torch.add(w, 1)
y = torch.mul(a, b)
y.backward()
print("is_leaf:", w.is_leaf, x.is_leaf, a.is_leaf, b.is_leaf, y.is_leaf)
print("gradient:", w.grad, x.grad, a.grad, b.grad, y.grad)
