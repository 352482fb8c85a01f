"""What a local rule reads of one recorded backward step, and how it writes its terms."""

from __future__ import annotations

import ast
import copy
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
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


@functools.lru_cache(maxsize=8192, typed=True)  # typed: True prints as 'True', 1 as '1'
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
    text = f"{v:.4g}"  # fixed-point below 1e4 after rounding: 4 digits, as 'g' writes them
    return text if "e" not in text else format(float(text), "g")  # 12350, not 1.235e+04


def browser_values(values: Any) -> str:
    """Nested lists as [1, 2, [3, 4]] with browser-style numbers."""
    if isinstance(values, list):
        return "[" + ", ".join(browser_values(v) for v in values) + "]"
    return browser_number(values)


def format_tensor(t: torch.Tensor) -> str:
    """A tensor's values; a one-element tensor as a plain number."""
    if t.numel() == 1:
        return browser_number(t.item())
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
        # numbers only, the common case: numpy reads a nested list several times faster than
        # torch.tensor does, the same numbers (numpy's own strings of "NaN" and infinities
        # are those the recording writes)
        t = torch.from_numpy(np.array(data.values, dtype=np.float64 if floating else None))
    except (TypeError, ValueError, RuntimeError):  # other text among them
        try:
            t = torch.tensor(_finite(data.values), dtype=dtype)
        except (TypeError, ValueError, RuntimeError):
            return None
    if list(t.shape) == list(data.shape):  # nested as recorded: the common case
        return t
    return t.reshape(data.shape) if t.numel() == math.prod(data.shape) else None


def reduce_to(t: torch.Tensor, shape: list[int]) -> torch.Tensor:
    """Sum t over the dimensions that broadcasting added or stretched, back to shape."""
    if list(t.shape) == list(shape):
        return t
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


_RTOL, _ATOL = 1e-4, 1e-5  # how close a rule's value must be to the recorded gradient
_FEW = 64  # up to this many elements, values are compared in Python
_FLOATING = ("float", "bfloat")
_NUMBER_OR_TEXT = (int, float, str)
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def close_float(a: float | int | bool, b: float) -> bool:
    """torch.isclose(a, b, _RTOL, _ATOL) of two float64 numbers, NaN never close."""
    a = float(a)
    if a == b:
        return True
    error = abs(a - b)
    return math.isfinite(error) and error <= _ATOL + abs(_RTOL * b)


def one_float(data: TensorData | None) -> float | None:
    """The value of a one-element floating-point TensorData recorded as a plain float, as
    to_tensor reads it; None for anything else (no values, more elements, other numbers)."""
    if data is None or not data.dtype.startswith(_FLOATING):
        return None
    values = data.values
    for _ in data.shape:  # [[v]] for shape [1, 1]
        if type(values) is not list or len(values) != 1:
            return None
        values = values[0]
    return values if type(values) is float else None


def _few_floats(data: TensorData | None) -> list[float] | None:
    """The values of a floating-point TensorData as a flat list of floats, as to_tensor reads
    them; None where they are not simply nested numbers of its shape (to_tensor decides)."""
    if data is None or data.values is None or not data.dtype.startswith(_FLOATING):
        return None
    flat: list[Any] = []
    if not _flatten_into(data.values, data.shape, flat):
        return None
    if all(type(v) is float for v in flat):  # what a recording holds, NaN aside
        return flat
    if not all(isinstance(v, _NUMBER_OR_TEXT) for v in flat):
        return None  # to_tensor makes nothing of these
    if any(isinstance(v, str) for v in flat):  # to_tensor reads every string via _finite
        return [_NON_FINITE.get(v, 0.0) if isinstance(v, str) else float(v) for v in flat]
    return [float(v) for v in flat]


def _flatten_into(values: Any, shape: list[int], out: list[Any]) -> bool:
    """Append values, nested as shape says, to out; False when they are not nested so."""
    if not shape:
        if isinstance(values, list):
            return False
        out.append(values)
        return True
    if not isinstance(values, list) or len(values) != shape[0]:
        return False
    if len(shape) == 1:
        for v in values:
            if isinstance(v, list):
                return False
        out.extend(values)
        return True
    rest = shape[1:]
    return all(_flatten_into(v, rest, out) for v in values)


class ValueCache:
    """The recorded values of one recording as tensors and as text, each made once: the
    gradient one step sends is the one the next step receives, and both read it. The tensors
    are shared, so no rule changes one in place."""

    def __init__(self) -> None:
        # by id of the TensorData, which is held here so that its id is not reused
        self._tensors: dict[int, tuple[TensorData, torch.Tensor | None]] = {}
        self._texts: dict[int, str] = {}  # by id of a tensor made here (held in _tensors)
        self._numbers: dict[str, torch.Tensor] = {}

    def tensor(self, data: TensorData | None) -> torch.Tensor | None:
        """to_tensor(data), made once per recorded TensorData."""
        if data is None or data.values is None:
            return None
        known = self._tensors.get(id(data))
        if known is None:
            known = (data, to_tensor(data))
            self._tensors[id(data)] = known
            if known[1] is not None and known[1].numel() <= TEXT_LIMIT:
                self._texts[id(known[1])] = format_tensor(known[1])
        return known[1]

    def number(self, number: float) -> torch.Tensor:
        """A plain number as a float64 tensor, made once per number."""
        key = repr(float(number))  # tells -0.0 from 0.0, which 1/x does too
        known = self._numbers.get(key)
        if known is None:
            known = self._numbers[key] = torch.from_numpy(np.array(float(number)))
        return known

    def agrees(self, value: torch.Tensor, recorded: TensorData | None) -> bool | None:
        """Whether a rule's value is torch.allclose(rtol=1e-4, atol=1e-5) to the recorded
        gradient, in float64; None when that gradient has no values. A few numbers are
        compared in Python, as allclose compares them, without making tensors."""
        numbers = _few_floats(recorded) if value.numel() <= _FEW else None
        if numbers is not None and not value.is_complex():
            if list(value.shape) != list(recorded.shape):  # type: ignore[union-attr]
                return False
            flat = value.tolist() if value.dim() == 1 else value.reshape(-1).tolist()
            return all(map(close_float, flat, numbers))
        expected = self.tensor(recorded)
        if expected is None:
            return None
        return value.shape == expected.shape and bool(
            torch.allclose(value.to(torch.float64), expected.to(torch.float64), _RTOL, _ATOL)
        )

    def text(self, value: torch.Tensor | None, shape: Any) -> str:
        """An operand in a rule's numbers: its values when small, else its shape."""
        if value is None:
            return bracketed_shape(shape)
        known = self._texts.get(id(value))
        return known if known is not None else _operand_text(value, shape)


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
    values: ValueCache = field(default_factory=ValueCache)  # shared by a recording's steps

    def __post_init__(self) -> None:
        self._literals: dict[str, Any] = {}
        g = self.step.grad_outputs[0] if self.step.grad_outputs else None
        self.grad_data = g
        self.grad_float = one_float(g)  # the arriving gradient when it is one plain number

    @functools.cached_property
    def grad(self) -> Operand:
        """The gradient that arrived at the op's output, as an operand (its tensor made on
        first use: a rule computed with floats needs none)."""
        g = self.grad_data
        return Operand(f"grad_{self.output}", self.values.tensor(g), g.shape if g else None)

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
        value = self.values.tensor(data)
        one = value is not None and value.numel() == 1
        name = self._operand_name(
            slot, label, lambda: format_tensor(value) if one else None, fallback
        )
        return Operand(name or fallback, value, data.shape if data else None)

    def float_operand(self, key: str, slot: int) -> Operand | None:
        """operand(key, slot) with a plain float for its value where the saved tensor is one
        recorded number (no tensor is made); None where it holds other values."""
        label, data = self.saved_data(key)
        value = None
        if data is not None and data.values is not None:
            value = one_float(data)
            if value is None:
                return None
        name = self._operand_name(
            slot, label, lambda: browser_number(value) if value is not None else None
        )
        return Operand(name or "c", value, data.shape if data else None)  # type: ignore[arg-type]

    def _operand_name(
        self,
        slot: int | None,
        label: str | None,
        number: Callable[[], str | None],
        fallback: str = "c",
    ) -> str | None:
        """An operand's name: its input slot's, its node's, the next plain input's (a tensor
        that needs no grad, drawn as an input), its one number as written, or a constant's."""
        name = self.slot_name(slot) if slot is not None else None
        if name is None:
            name = label
        if name is None and slot is not None and self.plain_inputs:
            name = self.plain_inputs.pop(0)
        if name is None:
            name = number()
        if name is None and slot is not None:
            name = self.constant_name(slot, fallback)
        return name

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
        t = self.values.tensor(saved.value)
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
                text.append(self.values.text(item.value, item.shape))
            elif isinstance(item, torch.Tensor):
                text.append(self.values.text(item, item.shape))
        text.append(" = ")
        text.append(self.values.text(value, shape))
        agrees = self.values.agrees(value, recorded) if value is not None else None
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

    def float_term(
        self, slot: int, local: str, product: str, numbers: str, value: float
    ) -> RuleTerm | None:
        """term() for a gradient that is one number, computed in Python as float64 as torch
        computes it: numbers ends in its value; None where the recorded gradient is not one
        plain float (term() then decides)."""
        recorded = self.step.grad_inputs[slot]
        expected = one_float(recorded)
        if expected is None:
            return None
        agrees = close_float(value, expected)
        return new_rule_term(
            slot=slot,
            input=self.slot_tensors[slot] if slot < len(self.slot_tensors) else None,
            name=self.slot_name(slot) or f"input{slot}",
            local=local,
            product=product,
            numbers=f"{numbers} = {browser_number(value)}",
            value=None
            if agrees
            else _summary(torch.tensor(value, dtype=torch.float64).reshape(recorded.shape)),
            agrees=agrees,
            message=None,
        )


def _operand_text(value: torch.Tensor | None, shape: Any) -> str:
    """An operand in a rule's numbers: its values when small, else its shape."""
    if value is not None and value.numel() <= TEXT_LIMIT:
        return format_tensor(value)
    return bracketed_shape(shape)


def _summary(t: torch.Tensor) -> TensorData:
    return summarize(t.to(torch.float32) if t.is_floating_point() else t, 64, preview=False)
