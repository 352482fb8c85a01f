# The two classic autograd errors, caught so the lesson can go on.
import torch

a = torch.tensor([1.0, 2.0], requires_grad=True)
try:
    a.add_(1)  # in-place change of a leaf that requires grad
except RuntimeError as err:
    print("refused:", str(err).splitlines()[0])

b = a * a
c = b.sum()
c.backward()
try:
    c.backward()  # the saved tensors were freed by the first backward
except RuntimeError as err:
    print("second backward:", type(err).__name__)

c = (a * 3).sum()
c.backward()
print(a.grad)  # 2a from the first pass plus 3: 5, 7
