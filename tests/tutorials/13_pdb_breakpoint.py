# Stopping in the debugger to look at grad_fn before calling backward.
import pdb

import torch

w = torch.tensor([1.0, 2.0], requires_grad=True)
x = torch.tensor([3.0, 4.0])
y = (w * x).sum() + w.pow(2).sum()
pdb.set_trace()  # inspect y.grad_fn.next_functions here
y.backward()
print(w.grad)  # x + 2w
