"""The local derivatives of the loss functions (nll_loss, mse_loss, binary_cross_entropy)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from app.rule_terms import elementwise, rule_terms
from app.rule_text import rule_message
from app.schemas import RuleTerm
from app.step_view import StepView, browser_number


def _mean_count(view: StepView, shape: list[int] | None) -> int:
    reduction = view.number("reduction", 1)
    return math.prod(shape or []) if reduction == 1 else 1


def _one_hot_rows(
    shape: list[int],
    targets: torch.Tensor,
    grad: torch.Tensor,
    reduction: int,
    total: float,
    ignore: int,
) -> torch.Tensor:
    """-grad / total at each row's target class (none for ignore_index), zeros elsewhere.

    Written row by row into a numpy array: a batch's few rows cost less so than the dozen torch
    calls that scatter them."""
    value = np.zeros(shape, dtype=np.float64)
    rows = value.reshape(-1, shape[-1]) if len(shape) > 1 else value.reshape(1, -1)
    classes = targets.reshape(-1).long().tolist()
    # the arithmetic in grad's own precision, as torch does it
    scaled = (-grad.reshape(-1 if reduction == 0 else 1) / total).to(torch.float64).tolist()
    per_row = scaled if reduction == 0 else scaled * len(classes)
    if len(per_row) < len(classes) or len(classes) > len(rows):
        raise IndexError("a target without its row")
    for row, (target, number) in enumerate(zip(classes, per_row, strict=False)):
        if target != ignore:
            rows[row, target] = number
    return torch.from_numpy(value)


def _nll_loss(view: StepView) -> tuple[str, list[RuleTerm]]:
    target_name = view.plain_inputs[0] if view.plain_inputs else "target"  # the drawn class labels
    x, t, g = view.operand("self", 0), view.operand("target", fallback=target_name), view.grad
    reduction = view.number("reduction", 1)
    total = view.number("total_weight", 1.0) if reduction == 1 else 1.0
    ignore = view.number("ignore_index", -100)
    value = None
    weighted = "weight" in view.saved_by_name
    if g.value is not None and t.value is not None and x.shape is not None and not weighted:
        value = _one_hot_rows(x.shape, t.value, g.value, reduction, total, ignore)
    n = browser_number(total)
    scale = f" / {n}" if n != "1" else ""
    return f"{view.output} = nll_loss({x.name}, {t.name})", rule_terms(
        view,
        (
            0,
            lambda: view.term(
                0,
                f"-one_hot({t.name})" + scale.replace(" ", ""),
                f"-{g.name} · one_hot({t.name}){scale}",
                ["-", g, " · one_hot(", t, f"){scale}"],
                value,
                rule_message("oneHot", target=t.name, n=n),
            ),
        ),
    )


def _mse_loss(view: StepView) -> tuple[str, list[RuleTerm]]:
    x, t = view.operand("self", 0), view.operand("target", 1, "target")
    n = _mean_count(view, x.shape)
    local = 2 * (x.value - t.value) / n if x.value is not None and t.value is not None else None
    text = f"2·({x.name} - {t.name})" + (f"/{n}" if n != 1 else "")
    negative = f"-2·({x.name} - {t.name})" + (f"/{n}" if n != 1 else "")
    return f"{view.output} = mse_loss({x.name}, {t.name})", rule_terms(
        view,
        (0, lambda: elementwise(view, 0, text, local, x.shape)),
        (1, lambda: elementwise(view, 1, negative, -local if local is not None else None, x.shape)),
    )


def _bce(view: StepView) -> tuple[str, list[RuleTerm]]:
    x, t = view.operand("self", 0), view.operand("target", 1, "target")
    n = _mean_count(view, x.shape)
    weight = view.operand("weight") if "weight" in view.saved_by_name else None
    local = None
    if x.value is not None and t.value is not None:
        local = (x.value - t.value) / (x.value * (1 - x.value)) / n
        if weight is not None:
            local = local * weight.value if weight.value is not None else None
    xn, tn = x.name, t.name
    text = f"({xn} - {tn}) / ({xn}·(1 - {xn}))" + (f"/{n}" if n != 1 else "")
    return f"{view.output} = binary_cross_entropy({xn}, {tn})", rule_terms(
        view, (0, lambda: elementwise(view, 0, text, local, x.shape))
    )


LOSS_RULES: dict[str, Callable[[StepView], tuple[str, list[RuleTerm]]]] = {
    "NllLossBackward0": _nll_loss,
    "MseLossBackward0": _mse_loss,
    "BinaryCrossEntropyBackward0": _bce,
}
