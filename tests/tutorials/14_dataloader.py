# Concise linear regression: a TensorDataset, a shuffling DataLoader and nn.Linear.
import torch
import torch.utils.data
from torch import nn

torch.manual_seed(0)
true_w = torch.tensor([[2.0], [-1.0]])
features = torch.randn(32, 2)
labels = features @ true_w + 0.5 + 0.01 * torch.randn(32, 1)

dataset = torch.utils.data.TensorDataset(features, labels)
loader = torch.utils.data.DataLoader(
    dataset, batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(3)
)

net = nn.Linear(2, 1)
loss_fn = nn.MSELoss()
trainer = torch.optim.SGD(net.parameters(), lr=0.05)
for epoch in range(2):
    for X, y in loader:
        l = loss_fn(net(X), y)
        trainer.zero_grad()
        l.backward()
        trainer.step()
    print(f"epoch {epoch + 1}, loss {loss_fn(net(features), labels).item():f}")
