"""The device context: created tensors land on the device, random draws come from the CPU."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from app.device_mode import SameSeedDevice, device_context


def _draws() -> list[torch.Tensor]:
    layer = nn.Linear(4, 3)  # weight and bias drawn with uniform_
    return [
        torch.randn(2, 3, requires_grad=True),
        torch.rand(4),
        torch.randint(0, 10, (5,)),
        torch.randperm(6),
        torch.normal(0.0, 1.0, size=(3,)),
        torch.randn_like(torch.zeros(2, 2)),
        torch.empty(7).uniform_(-1, 1),
        torch.empty(3).normal_(),
        layer.weight,
        layer.bias,
        torch.zeros(3),
        torch.tensor([1.0, 2.0]),
    ]


def test_created_tensors_land_on_the_device_and_keep_their_role() -> None:
    with SameSeedDevice(torch.device("meta")):
        tensors = _draws()
    assert all(t.device.type == "meta" for t in tensors)
    assert tensors[0].is_leaf and tensors[0].requires_grad
    assert isinstance(tensors[8], nn.Parameter) and tensors[8].requires_grad


def test_random_draws_consume_the_cpu_generator_as_on_the_cpu() -> None:
    torch.manual_seed(0)
    on_cpu = _draws()
    after_cpu = torch.randn(8)
    torch.manual_seed(0)
    with SameSeedDevice(torch.device("meta")):
        _draws()
    assert torch.equal(torch.randn(8), after_cpu)  # same numbers drawn, in the same order
    assert on_cpu[0].device.type == "cpu"


def test_cpu_runs_need_no_device_context() -> None:
    with device_context(torch.device("cpu")):
        assert torch.overrides._get_current_function_mode_stack() == []
        assert torch.randn(2).device.type == "cpu"
    assert isinstance(device_context(torch.device("meta")), SameSeedDevice)


@pytest.mark.cuda
def test_cuda_draws_equal_cpu_draws() -> None:
    torch.manual_seed(0)
    on_cpu = _draws()
    torch.manual_seed(0)
    with device_context(torch.device("cuda")):
        on_gpu = _draws()
    for a, b in zip(on_cpu, on_gpu, strict=True):
        assert b.device.type == "cuda" and torch.equal(a.detach(), b.detach().cpu())
