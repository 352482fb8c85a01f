# Gradients of a real loss with respect to complex numbers (Wirtinger calculus, conjugate grad).
import torch

z = torch.tensor([1.0 + 1.0j, -0.5 + 2.0j, 0.3 - 0.7j], requires_grad=True)
w = torch.tensor([0.5 - 0.5j, 1.0 + 0.0j, -1.0 + 1.0j])

field = z * w + z.conj() ** 2
loss = (field.abs() ** 2).sum() + torch.angle(z).sum()
loss.backward()
print("z.grad:", z.grad)
