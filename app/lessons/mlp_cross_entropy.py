# title: MLP classifier with CrossEntropyLoss
# title_zh: 多层感知机与交叉熵损失
# lesson: cross_entropy is one call made of log_softmax and nll_loss; fc1 and fc2 group their ops.
# lesson_zh: cross_entropy 是一次调用,由 log_softmax 和 nll_loss 组成;fc1 和 fc2 各自归组。
import torch
import torch.nn as nn
import torch.optim as optim


class SimpleNN(nn.Module):
    def __init__(self):
        super(SimpleNN, self).__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x):
        x = torch.relu(self.fc1(x))
        x = self.fc2(x)
        return x


torch.manual_seed(0)
net = SimpleNN()
criterion = nn.CrossEntropyLoss()
optimizer = optim.SGD(net.parameters(), lr=0.1)
inputs = torch.randn(6, 8)
labels = torch.tensor([0, 1, 2, 0, 1, 2])
for epoch in range(5):
    optimizer.zero_grad()
    outputs = net(inputs)
    loss = criterion(outputs, labels)
    loss.backward()
    optimizer.step()
    print("epoch", epoch + 1, "loss", loss.item())
