# title: y = (x + w) * (w + 1): one leaf, two paths
# title_zh: y = (x + w) * (w + 1):一个叶子,两条路径
# lesson: w feeds two ops; both gradients arrive at w and sum into w.grad = 5.
# lesson_zh: w 参与了两个运算;两路梯度都回到 w,相加得到 w.grad = 5。
import torch

w = torch.tensor([1.], requires_grad=True)
x = torch.tensor([2.], requires_grad=True)
a = torch.add(w, x)
b = torch.add(w, 1)
y = torch.mul(a, b)
y.backward()
print("w.grad:", w.grad)
print("grad_fn:", a.grad_fn, b.grad_fn, y.grad_fn)
