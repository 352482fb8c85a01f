# title: Logistic regression: nn.Linear + Sigmoid + BCELoss + SGD
# title_zh: 逻辑回归:nn.Linear + Sigmoid + BCELoss + SGD
# lesson: ops grouped by module (features, sigmoid); parameters are leaves; SGD updates them.
# lesson_zh: 运算按模块分组(features、sigmoid);参数是叶子;SGD 更新它们。
import torch
import torch.nn as nn
import torch.optim as optim

torch.manual_seed(10)
sample_nums = 100
mean_value = 1.7
bias = 1
n_data = torch.ones(sample_nums, 2)
x0 = torch.normal(mean_value * n_data, 1) + bias
y0 = torch.zeros(sample_nums)
x1 = torch.normal(-mean_value * n_data, 1) + bias
y1 = torch.ones(sample_nums)
train_x = torch.cat((x0, x1), 0)
train_y = torch.cat((y0, y1), 0)


class LR(nn.Module):
    def __init__(self):
        super(LR, self).__init__()
        self.features = nn.Linear(2, 1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        x = self.features(x)
        x = self.sigmoid(x)
        return x


lr_net = LR()
loss_fn = nn.BCELoss()
optimizer = optim.SGD(lr_net.parameters(), lr=0.01, momentum=0.9)
for iteration in range(50):
    y_pred = lr_net(train_x)
    loss = loss_fn(y_pred.squeeze(), train_y)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
mask = y_pred.ge(0.5).float().squeeze()
acc = (mask == train_y).sum().item() / train_y.size(0)
print("loss:", loss.item(), "accuracy:", acc)
