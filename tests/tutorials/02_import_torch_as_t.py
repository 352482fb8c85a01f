# 书中常见的写法：import torch as t。梯度会累加，除非手动清零。
import torch as t

x = t.ones(2, 2, requires_grad=True)
y = x.sum()
print(y.grad_fn)

y.backward()
print(x.grad)  # 全是 1

y = x.sum()
y.backward()
print(x.grad)  # 累加成 2

x.grad.data.zero_()  # 清零后再算一次
y = (x * x + t.sin(x)).sum()
y.backward()
print(x.grad)  # 2x + cos(x)
