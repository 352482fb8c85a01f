# Forward and full backward hooks on modules: record activations and the gradients leaving them.
import torch
from torch import nn

torch.manual_seed(9)
model = nn.Sequential(nn.Linear(4, 5), nn.Sigmoid(), nn.Linear(5, 2))
activations = {}
grad_norms = {}


def save_activation(name):
    def hook(module, inputs, output):
        activations[name] = output.detach()

    return hook


def save_grad(name):
    def hook(module, grad_input, grad_output):
        grad_norms[name] = grad_output[0].norm().item()

    return hook


for name, layer in model.named_children():
    layer.register_forward_hook(save_activation(name))
    layer.register_full_backward_hook(save_grad(name))

batch = torch.randn(3, 4)
loss = model(batch).pow(2).mean()
loss.backward()
print(sorted(activations), {k: round(v, 4) for k, v in sorted(grad_norms.items())})
