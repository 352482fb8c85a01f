# The "60 minute blitz" autograd lesson in its older form: a Variable records the history
# of every operation on it, and out.backward() fills x.grad.
import torch
from torch.autograd import Variable

print("PyTorch", torch.__version__)

x = Variable(torch.ones(2, 2), requires_grad=True)
y = x + 2
print(y.grad_fn)

z = y * y * 3
out = z.mean()
print(z, out)

out.backward()
print(x.grad)  # d(out)/dx = 6 * (x + 2) / 4 = 4.5 everywhere
