# Neurons, layers and an MLP as plain Python classes over torch tensors, trained by hand.
import torch


class Neuron:
    def __init__(self, nin):
        self.w = torch.randn(nin, requires_grad=True)
        self.b = torch.zeros(1, requires_grad=True)

    def __call__(self, x):
        return torch.tanh((self.w * x).sum() + self.b)

    def parameters(self):
        return [self.w, self.b]


class Layer:
    def __init__(self, nin, nout):
        self.neurons = [Neuron(nin) for _ in range(nout)]

    def __call__(self, x):
        outs = [n(x) for n in self.neurons]
        return torch.cat(outs) if len(outs) > 1 else outs[0]

    def parameters(self):
        return [p for n in self.neurons for p in n.parameters()]


class MLP:
    def __init__(self, nin, nouts):
        sizes = [nin] + nouts
        self.layers = [Layer(sizes[i], sizes[i + 1]) for i in range(len(nouts))]

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]


torch.manual_seed(7)
mlp = MLP(3, [4, 4, 1])
xs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
ys = [1.0, -1.0, -1.0, 1.0]
params = mlp.parameters()
print(len(params), "tensors")

for k in range(5):
    preds = [mlp(torch.tensor(x)) for x in xs]
    loss = sum((yp - yt) ** 2 for yp, yt in zip(preds, ys))
    for p in params:
        p.grad = None
    loss.backward()
    with torch.no_grad():
        for p in params:
            p -= 0.05 * p.grad
    print(k, loss.item())
