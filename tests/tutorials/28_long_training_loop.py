# A longer run: an MLP learns four Gaussian blobs with Adam over a few hundred steps.
import torch
from torch import nn

torch.manual_seed(0)
centers = torch.tensor([[2.0, 2.0], [-2.0, 2.0], [-2.0, -2.0], [2.0, -2.0]])
labels = torch.arange(4).repeat_interleave(128)
points = centers[labels] + torch.randn(512, 2)
features = torch.cat([points, points**2, points.prod(1, keepdim=True)], dim=1)

model = nn.Sequential(nn.Linear(5, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
loss_fn = nn.CrossEntropyLoss()

for step in range(200):
    optimizer.zero_grad()
    loss = loss_fn(model(features), labels)
    loss.backward()
    optimizer.step()
    if step % 50 == 0:
        accuracy = (model(features).argmax(1) == labels).float().mean()
        print(f"step {step:3d}  loss {loss.item():.4f}  accuracy {accuracy.item():.3f}")
