"""What a local rule reads of one recorded backward step, and how it writes its terms."""

from __future__ import annotations

import ast
import copy
import functools
import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch

from app.records import maker
from app.schemas import (
    BackwardStep,
    NoteMessage,
    OpNode,
    RuleTerm,
    SavedTensor,
    TensorData,
    TensorNode,
)
from app.tensor_summary import summarize

# records made by the thousand: every field by keyword, nothing checked
new_rule_term = maker(RuleTerm)

TEXT_LIMIT = 6  # at most this many elements per tensor are written out in a rule's numbers


class Operand(NamedTuple):
    """A named tensor in a rule: its values when recorded inline, its shape always."""

    name: str
    value: torch.Tensor | None
    shape: list[int] | None


def browser_number(value: float | int | bool | str) -> str:
    """A number as the browser prints it: 3, 0.7311, 1.23e-05."""
    if isinstance(value, str | bool):
        return str(value)
    v = float(value)
    if not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    if v == 0:
        return "0"
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    if abs(v) < 1e-3 or abs(v) >= 1e5:
        mantissa, exponent = f"{v:.2e}".split("e")
        return f"{mantissa}e{int(exponent):+d}"  # 1.00e-5, as JavaScript writes it
    return format(float(f"{v:.4g}"), "g")


def browser_values(values: Any) -> str:
    """Nested lists as [1, 2, [3, 4]] with browser-style numbers."""
    if isinstance(values, list):
        return "[" + ", ".join(browser_values(v) for v in values) + "]"
    return browser_number(values)


def format_tensor(t: torch.Tensor) -> str:
    """A tensor's values; a one-element tensor as a plain number."""
    if t.numel() == 1:
        return browser_number(t.reshape(()).item())
    return browser_values(t.tolist())


def bracketed_shape(shape: list[int] | None) -> str:
    """[2×3] for a shape; [] for a scalar."""
    if not shape:
        return "[]"
    key = tuple(shape)
    text = _SHAPE_TEXTS.get(key)
    if text is None:
        text = "[" + "×".join(map(str, shape)) + "]"
        if len(_SHAPE_TEXTS) < 4096:
            _SHAPE_TEXTS[key] = text
    return text


_SHAPE_TEXTS: dict[tuple[int, ...], str] = {}  # shapes repeat across a recording's steps


def _finite(values: Any) -> Any:
    if isinstance(values, list):
        return [_finite(v) for v in values]
    if isinstance(values, str):
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(values, 0.0)
    return values


def to_tensor(data: TensorData | None) -> torch.Tensor | None:
    """The recorded values as a tensor (float64 for floating dtypes); None when not inline."""
    if data is None or data.values is None:
        return None
    floating = data.dtype.startswith(("float", "bfloat", "complex"))
    dtype = torch.float64 if floating else None
    try:
        t = torch.tensor(data.values, dtype=dtype)  # numbers only: the common case
    except (TypeError, ValueError, RuntimeError):  # "NaN" / "Infinity" among them
        try:
            t = torch.tensor(_finite(data.values), dtype=dtype)
        except (TypeError, ValueError, RuntimeError):
            return None
    return t.reshape(data.shape) if t.numel() == math.prod(data.shape) else None


def reduce_to(t: torch.Tensor, shape: list[int]) -> torch.Tensor:
    """Sum t over the dimensions that broadcasting added or stretched, back to shape."""
    extra = t.dim() - len(shape)
    if extra > 0:
        t = t.sum(dim=tuple(range(extra)))
    dims = tuple(i for i, s in enumerate(shape) if s == 1 and t.shape[i] != 1)
    if dims:
        t = t.sum(dim=dims, keepdim=True)
    return t.reshape(shape)


def literal(text: str | None) -> Any:
    """A Python literal from a saved attribute's repr; None when it is not one."""
    if text is None:
        return None
    if text.lstrip("-").isdigit():
        return int(text)
    value = _parsed(text)
    return copy.deepcopy(value) if isinstance(value, list | dict | set) else value


@functools.lru_cache(maxsize=4096)
def _parsed(text: str) -> Any:
    """ast.literal_eval of a repr, once per distinct text (reprs repeat across steps)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None


def linked_data(
    saved: SavedTensor, nodes: dict[str, TensorNode | OpNode]
) -> tuple[str | None, TensorData | None]:
    """(label of the tensor node a saved tensor is linked to, its values), or (None, the values
    recorded with it)."""
    node = nodes.get(saved.tensor) if saved.tensor is not None else None
    if isinstance(node, TensorNode):
        return node.label, node.value
    return None, saved.value


@dataclass
class StepView:
    """One backward step of one op, seen with the names and values the recorder kept."""

    op: OpNode
    step: BackwardStep
    nodes: dict[str, TensorNode | OpNode]
    slot_tensors: list[str | None]
    slot_labels: list[str | None]
    output: str
    saved_by_name: dict[str, SavedTensor]  # op.saved by name, read-only
    plain_inputs: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._literals: dict[str, Any] = {}
        g = self.step.grad_outputs[0] if self.step.grad_outputs else None
        self.grad_data = g
        self.grad = Operand(f"grad_{self.output}", to_tensor(g), g.shape if g else None)

    # ----- reading -----------------------------------------------------------------

    def wants(self, slot: int) -> bool:
        """Whether the step sent a gradient to input slot."""
        return (
            slot < len(self.op.next)
            and self.op.next[slot] is not None
            and slot < len(self.step.grad_inputs)
            and self.step.grad_inputs[slot] is not None
        )

    def input_shape(self, slot: int) -> list[int] | None:
        """Shape of input slot, read off its recorded gradient."""
        if slot < len(self.step.grad_inputs) and self.step.grad_inputs[slot] is not None:
            return self.step.grad_inputs[slot].shape
        return None

    def slot_name(self, slot: int) -> str | None:
        """The user's name of the tensor behind input slot (None for a slot that needs no grad)."""
        return self.slot_labels[slot] if slot < len(self.slot_labels) else None

    def saved_data(self, key: str) -> tuple[str | None, TensorData | None]:
        """(label of the linked tensor node, its values) of a saved tensor."""
        saved = self.saved_by_name.get(key)
        if saved is None:
            return None, None
        return linked_data(saved, self.nodes)

    def operand(self, key: str, slot: int | None = None, fallback: str = "c") -> Operand:
        """A saved tensor as an operand, named after its input slot, its node or its value."""
        label, data = self.saved_data(key)
        value = to_tensor(data)
        name = self.slot_name(slot) if slot is not None else None
        if name is None:
            name = label
        if name is None and slot is not None and self.plain_inputs:
            name = self.plain_inputs.pop(0)  # a tensor that needs no grad, drawn as an input
        if name is None and value is not None and value.numel() == 1:
            name = format_tensor(value)
        if name is None and slot is not None:
            name = self.constant_name(slot, fallback)
        return Operand(name or fallback, value, data.shape if data else None)

    def constant_name(self, slot: int, fallback: str = "c") -> str:
        """Name of an input that needs no grad: a plain tensor's label or the number given."""
        name = self.slot_name(slot)
        if name is not None:
            return name
        if self.plain_inputs:
            return self.plain_inputs.pop(0)
        if self.op.constants:
            return browser_number(literal(self.op.constants[0]) or 0)
        return fallback

    def number(self, key: str, default: Any = None) -> Any:
        """A saved non-tensor attribute (alpha, dim, exponent) as a Python value."""
        saved = self.saved_by_name.get(key)
        if saved is None:
            return default
        if saved.repr is not None:
            value = self._literals.get(key) if key in self._literals else literal(saved.repr)
            self._literals[key] = value
            return default if value is None else value
        t = to_tensor(saved.value)
        if t is not None and t.numel() == 1:
            return t.reshape(()).item()
        return default

    # ----- writing -----------------------------------------------------------------

    def term(
        self,
        slot: int,
        local: str,
        product: str,
        parts: list[str | Operand | torch.Tensor | None],
        value: torch.Tensor | None,
        message: NoteMessage | None = None,
    ) -> RuleTerm:
        """One input's term: numbers written with values when small, else with shapes; message
        says in words what the formula does."""
        recorded = self.step.grad_inputs[slot]
        shape = recorded.shape if recorded else None
        text = []
        for item in parts:
            if isinstance(item, str):
                text.append(item)
            elif isinstance(item, Operand):
                text.append(_operand_text(item.value, item.shape))
            elif isinstance(item, torch.Tensor):
                text.append(_operand_text(item, item.shape))
        text.append(" = ")
        text.append(_operand_text(value, shape))
        agrees = None
        expected = to_tensor(recorded) if value is not None else None
        if value is not None and expected is not None:
            agrees = value.shape == expected.shape and bool(
                torch.allclose(value.to(torch.float64), expected.to(torch.float64), 1e-4, 1e-5)
            )
        name = self.slot_name(slot) or f"input{slot}"
        return new_rule_term(
            slot=slot,
            input=self.slot_tensors[slot] if slot < len(self.slot_tensors) else None,
            name=name,
            local=local,
            product=product,
            numbers="".join(text),
            value=_summary(value) if value is not None and not agrees else None,
            agrees=agrees,
            message=message,
        )


def _operand_text(value: torch.Tensor | None, shape: Any) -> str:
    """An operand in a rule's numbers: its values when small, else its shape."""
    if value is not None and value.numel() <= TEXT_LIMIT:
        return format_tensor(value)
    return bracketed_shape(shape)


def _summary(t: torch.Tensor) -> TensorData:
    return summarize(t.to(torch.float32) if t.is_floating_point() else t, 64, preview=False)
