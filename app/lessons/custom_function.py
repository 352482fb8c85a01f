# title: A custom autograd.Function (ReLU)
# title_zh: 自定义 autograd.Function(ReLU)
# lesson: the custom node appears under its own class name and its backward runs in the pass.
# lesson_zh: 自定义节点以它自己的类名出现,它的 backward 在反向传播中运行。
import torch


class MyReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return input.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_output):
        input, = ctx.saved_tensors
        grad_input = grad_output.clone()
        grad_input[input < 0] = 0
        return grad_input


torch.manual_seed(0)
x = torch.randn(4, 3)
w1 = torch.randn(3, 5, requires_grad=True)
w2 = torch.randn(5, 2, requires_grad=True)
h = x.mm(w1)
h_relu = MyReLU.apply(h)
y_pred = h_relu.mm(w2)
loss = y_pred.pow(2).sum()
loss.backward()
print("w1.grad:", w1.grad)
