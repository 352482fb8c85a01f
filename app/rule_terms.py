"""What every local rule writes with: a gradient times its local derivative, term by term."""

from __future__ import annotations

from collections.abc import Callable

import torch

from app.rule_text import rule_message
from app.schemas import RuleTerm
from app.step_view import Operand, StepView, browser_number, reduce_to


def broadcast_shape(a: list[int], b: list[int]) -> list[int]:
    """The shape two shapes broadcast to (torch's rule), without asking torch."""
    if a == b or not b:  # a zero-dimensional tensor broadcasts to any shape
        return list(a)
    if not a:
        return list(b)
    rank = max(len(a), len(b))
    a, b = [1] * (rank - len(a)) + list(a), [1] * (rank - len(b)) + list(b)
    return [x if y == 1 else y for x, y in zip(a, b, strict=True)]


_GROUPING = frozenset(" +-·/")  # characters that make a name an expression to bracket


def grouped(text: str) -> str:
    """text, bracketed where it is an expression."""
    return text if _GROUPING.isdisjoint(text) else f"({text})"


def elementwise(
    view: StepView,
    slot: int,
    local: str,
    local_value: torch.Tensor | float | None,
    local_shape: list[int] | None = None,
) -> RuleTerm:
    """grad_in = grad_out · local, summed over the dimensions broadcasting added. A float
    local_value is a number of local_shape ([] when None)."""
    if type(local_value) is float:
        term = float_elementwise(view, slot, local, local_value, local_shape)
        if term is not None:
            return term
    g = view.grad
    shape = view.input_shape(slot)
    if isinstance(local_value, torch.Tensor):
        local_shape = list(local_value.shape) if local_shape is None else local_shape
    out_shape = broadcast_shape(g.shape or [], local_shape or [])
    reduced = shape is not None and out_shape != list(shape)
    value = None
    if g.value is not None and local_value is not None and shape is not None:
        value = reduce_to(g.value * local_value, list(shape))
    if isinstance(local_value, torch.Tensor) or local_value is None:
        factor: str | Operand = Operand(local, local_value, local_shape)
    else:
        factor = browser_number(local_value)
    product = f"{g.name} · {grouped(local)}"
    parts: list = [g, " · ", factor]
    message = None
    if reduced:
        product, parts = f"sum({product})", ["sum(", *parts, ")"]
        message = rule_message("broadcast", x=view.slot_name(slot) or f"input{slot}")
    return view.term(slot, local, product, parts, value, message)


def float_elementwise(
    view: StepView, slot: int, local: str, local_value: float, local_shape: list[int] | None
) -> RuleTerm | None:
    """elementwise() where the gradient, the local value and the result are one number each
    and broadcasting sums nothing: the same term, computed with floats (float64, as torch
    computes it) instead of tensors; None where that does not hold."""
    g = view.grad_float
    shape = view.input_shape(slot)
    grad_shape = view.grad_data.shape if view.grad_data is not None else []
    if g is None or shape is None:
        return None
    if broadcast_shape(grad_shape, local_shape or []) != list(shape):
        return None
    numbers = f"{browser_number(g)} · {browser_number(local_value)}"
    product = f"grad_{view.output} · {grouped(local)}"
    return view.float_term(slot, local, product, numbers, g * local_value)


def rule_terms(view: StepView, *terms: tuple[int, Callable[[], RuleTerm]]) -> list[RuleTerm]:
    """The terms of the inputs the pass wants a gradient for."""
    return [make() for slot, make in terms if view.wants(slot)]
