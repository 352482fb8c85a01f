# title: Gradients accumulate until zeroed
# title_zh: 梯度不会自动清零
# lesson: four backward passes without zeroing give w.grad = 5, 10, 15, 20; zero_() resets it.
# lesson_zh: 四次反向传播都不清零,w.grad 依次为 5、10、15、20;zero_() 把它清零。
import torch

w = torch.tensor([1.], requires_grad=True)
x = torch.tensor([2.], requires_grad=True)
for i in range(4):
    a = torch.add(w, x)
    b = torch.add(w, 1)
    y = torch.mul(a, b)
    y.backward()
    print("w.grad:", w.grad)
w.grad.zero_()
print("after zero_():", w.grad)
