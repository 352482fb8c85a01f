# title: Control flow and weight sharing
# title_zh: 控制流与权重共享
# lesson: the graph is rebuilt each run; a loop reuses one layer, so its weight collects several gradients.
# lesson_zh: 每次运行都重建计算图;循环复用同一层,所以它的权重收到多份梯度。
import torch
import torch.nn as nn


class DynamicNet(nn.Module):
    def __init__(self, D_in, H, D_out):
        super(DynamicNet, self).__init__()
        self.input_linear = nn.Linear(D_in, H)
        self.middle_linear = nn.Linear(H, H)
        self.output_linear = nn.Linear(H, D_out)

    def forward(self, x, depth):
        h_relu = self.input_linear(x).clamp(min=0)
        for step in range(depth):
            h_relu = self.middle_linear(h_relu).clamp(min=0)
        y_pred = self.output_linear(h_relu)
        return y_pred


torch.manual_seed(0)
x = torch.randn(4, 3)
y = torch.randn(4, 2)
model = DynamicNet(3, 5, 2)
criterion = nn.MSELoss(reduction="sum")
for depth in [1, 3]:
    y_pred = model(x, depth)
    loss = criterion(y_pred, y)
    model.zero_grad()
    loss.backward()
    print("depth", depth, "loss", loss.item())
