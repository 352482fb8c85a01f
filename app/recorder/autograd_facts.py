"""What the recorder reads off torch objects: node names, call names, tensors in a value."""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

ACCUMULATE_GRAD = "AccumulateGrad"
PASS_FUNCTIONS = {torch.Tensor.backward, torch.autograd.grad, torch.autograd.backward}
SEQUENCE_NR_MAX = 2**63
_BACKWARD_SUFFIX = re.compile(r"Backward\d*$")


def _name_of(fn: Any) -> str:
    name = fn.name()
    return ACCUMULATE_GRAD if name.endswith("AccumulateGrad") else name


@dataclass(frozen=True, slots=True)
class NodeKind:
    """What every autograd node of one class shares: its names, how it is drawn, and the
    attributes it saved for backward ((attribute, name) pairs: '_saved_self', 'self')."""

    name: str
    op: str
    accumulates: bool
    saved: tuple[tuple[str, str], ...]


# per node class: its NodeKind, or None for a class whose nodes name themselves (a class
# torch shares among node kinds it has no class of their own for)
_KINDS: dict[type, NodeKind | None] = {}


def node_kind(fn: Any) -> NodeKind:
    """The NodeKind of an autograd node, found once per class where the class name says it."""
    kind = _KINDS.get(type(fn))
    if kind is not None:
        return kind
    name = _name_of(fn)
    kind = NodeKind(
        name=name,
        op=op_name_of(name),
        accumulates=name == ACCUMULATE_GRAD,
        saved=tuple((a, a.removeprefix("_saved_")) for a in saved_attribute_names(fn)),
    )
    cls = type(fn)
    if cls not in _KINDS:
        _KINDS[cls] = kind if cls.__name__ == name else None
    return kind


def grad_fn_name(fn: Any) -> str:
    """The class name of an autograd node ('MulBackward0', 'AccumulateGrad')."""
    return node_kind(fn).name


@functools.cache
def op_name_of(fn_name: str) -> str:
    """Forward op name guessed from a backward node name ('MulBackward0' -> 'mul')."""
    if fn_name == ACCUMULATE_GRAD:
        return "accumulate_grad"
    base = _BACKWARD_SUFFIX.sub("", fn_name) or fn_name
    return base.lower() if base[:1].isupper() and base[1:].islower() else base


def call_name_of(func: Any) -> str:
    """Readable name of a torch callable ('__mul__' -> 'mul', property getter -> its name)."""
    name = getattr(func, "__name__", None) or type(func).__name__
    if name == "__get__":
        owner = getattr(func, "__self__", None)
        name = getattr(owner, "__name__", "attribute")
    if name.startswith("__") and name.endswith("__"):
        name = name[2:-2]
        if name.startswith(("r", "i")) and name[1:] in {
            "add",
            "sub",
            "mul",
            "matmul",
            "truediv",
            "floordiv",
            "pow",
            "mod",
            "and",
            "or",
            "xor",
        }:
            name = name[1:] if name.startswith("i") else name
    return name


def iter_tensors(value: Any) -> Iterable[torch.Tensor]:
    """Tensors inside a value made of tensors, tuples, lists and dicts (iteratively)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            yield item
        elif isinstance(item, (list, tuple)):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))


_IN_PLACE_DUNDERS = frozenset(
    f"__i{op}__"
    for op in "add sub mul matmul truediv floordiv mod pow and or xor lshift rshift".split()
) | {"__setitem__", "__set__"}


def writes_in_place(func: Any, kwargs: Mapping[str, Any]) -> bool:
    """Whether a torch call may change the values of an existing tensor (add_, out=, x[i] = v)."""
    name = getattr(func, "__name__", "")
    return (
        (name.endswith("_") and not name.endswith("__"))
        or name in _IN_PLACE_DUNDERS
        or kwargs.get("out") is not None
    )


@functools.cache
def signature_of(func: Callable[..., Any]) -> inspect.Signature:
    """The signature of backward() / autograd.grad(), computed once."""
    return inspect.signature(func)


def storage_key(t: torch.Tensor) -> tuple[Any, ...] | None:
    """Identifies the memory a tensor views: same key, same values (while both are alive).
    None for a tensor without storage of its own (torch.func wrappers, sparse, nested)."""
    if t.layout is not torch.strided or t.is_nested:
        return None
    try:
        return (t.data_ptr(), t.shape, t.stride(), t.dtype, t.device)
    except (RuntimeError, NotImplementedError):
        return None


def shape_of(t: torch.Tensor) -> list[int]:
    """A tensor's shape; a nested tensor, whose parts differ in shape, counts its parts."""
    if t.is_nested:
        return [t.size(0)]
    return list(t.shape)


def dense_for_summary(t: torch.Tensor) -> torch.Tensor:
    """A strided tensor with the values a sparse or nested tensor stands for."""
    if t.is_nested:
        return t.detach().to_padded_tensor(0.0)
    if t.layout is not torch.strided:
        return t.detach().to_dense()
    return t


def plottable(t: torch.Tensor) -> torch.Tensor:
    """A float strided tensor whose norm stands for t in the chart (|z| for complex values)."""
    t = dense_for_summary(t.detach())
    return (t.abs() if t.is_complex() else t).float()


def autograd_role(t: torch.Tensor) -> tuple[Any, bool] | None:
    """(grad_fn, is_leaf) of a tensor; None for a view made stale by an in-place change of its
    base (an unbind view after optimizer.step()), where torch refuses to say."""
    try:
        return t.grad_fn, t.is_leaf
    except RuntimeError:
        return None


def in_function_transform() -> bool:
    """Whether a torch.func transform (grad, vmap, jacrev) is running the current call."""
    return torch._C._functorch.maybe_current_level() is not None


_saved_attrs_cache: dict[type, tuple[str, ...]] = {}


def saved_attribute_names(fn: Any) -> tuple[str, ...]:
    """The _saved_* attributes of an autograd node's class (found once per class)."""
    cls = type(fn)
    names = _saved_attrs_cache.get(cls)
    if names is None:
        names = tuple(a for a in dir(fn) if a.startswith("_saved_"))
        _saved_attrs_cache[cls] = names
    return names


def number_reprs(args: tuple[Any, ...]) -> list[str]:
    """Reprs of the plain numbers among a call's positional arguments."""
    return [repr(a) for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)][:8]
