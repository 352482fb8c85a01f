"""The benchmark graphs: a ResNet-18-style CNN and transformer encoders of 6, 24 and 48 layers."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a residual connection."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 layout (2-2-2-2 basic blocks), narrow, for 32x32 inputs."""

    def __init__(self, width: int = 16, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        layers, cin = [], width
        for i, stride in enumerate([1, 2, 2, 2]):
            cout = width * 2**i
            layers.append(nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.head = nn.Linear(cin, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(self.stem(x)).mean(dim=(2, 3)))


def encoder(layers: int, d_model: int = 32) -> nn.Module:
    """A transformer encoder from torch.nn."""
    layer = nn.TransformerEncoderLayer(
        d_model, nhead=4, dim_feedforward=2 * d_model, dropout=0.0, batch_first=True
    )
    return nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)


def resnet_loss() -> tuple[torch.Tensor, nn.Module]:
    """Loss of the CNN on a small batch, with the model."""
    torch.manual_seed(0)
    model = ResNet18()
    return model(torch.randn(2, 3, 32, 32)).logsumexp(dim=1).mean(), model


def encoder_loss(layers: int) -> Callable[[], tuple[torch.Tensor, nn.Module]]:
    """A builder of the encoder's loss on a small batch, with the model."""

    def build() -> tuple[torch.Tensor, nn.Module]:
        torch.manual_seed(0)
        model = encoder(layers)
        return model(torch.randn(2, 8, 32)).pow(2).mean(), model

    return build


MODELS: dict[str, Callable[[], tuple[torch.Tensor, nn.Module]]] = {
    "resnet18": resnet_loss,
    "encoder-6": encoder_loss(6),
    "encoder-24": encoder_loss(24),
    "encoder-48": encoder_loss(48),
}


def count_nodes(root: torch.Tensor) -> int:
    """Autograd nodes reachable from root."""
    seen, stack = set(), [root.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        stack.extend(f for f, _ in fn.next_functions)
    return len(seen)
