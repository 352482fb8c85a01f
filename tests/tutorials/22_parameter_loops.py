# Walking a model's modules and parameters by loop variable and by index.
import torch
from torch import nn

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
for name, layer in model.named_modules():
    if isinstance(layer, nn.Linear):
        nn.init.constant_(layer.bias, 0.1)
        print(name, layer)

for param in model.parameters():
    print(param.shape, param.requires_grad)
params = list(model.parameters())

x = torch.tensor([[1.0, -1.0], [0.5, 2.0]])
loss = model(x).pow(2).mean()
loss.backward()
with torch.no_grad():
    for param in model.parameters():
        param -= 0.1 * param.grad
for i in range(len(params)):
    params[i].grad.zero_()

loss = model(x).pow(2).mean()
loss.backward()
print(params[0].grad)
