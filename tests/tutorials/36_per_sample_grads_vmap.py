# Per-sample gradients with vmap(grad(...)), then the batch gradient by backward().
import torch
from torch.func import grad, jacrev, vmap

torch.manual_seed(4)
weights = torch.randn(3, requires_grad=True)
samples = torch.randn(8, 3)
labels = torch.randn(8)


def sample_loss(w, sample, label):
    return (torch.dot(w, sample) - label) ** 2


per_sample = vmap(grad(sample_loss), in_dims=(None, 0, 0))(weights, samples, labels)
jacobian = jacrev(lambda w: (samples @ w - labels) ** 2)(weights)
batch_loss = ((samples @ weights - labels) ** 2).sum()
batch_loss.backward()
print("per-sample sum matches:", torch.allclose(per_sample.sum(0), weights.grad, atol=1e-5))
print("jacobian rows match:", torch.allclose(jacobian, per_sample, atol=1e-5))
