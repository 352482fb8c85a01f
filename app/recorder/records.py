"""Records the recorder makes once per autograd node, built from their fields by position."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from app.records import maker
from app.schemas import BackwardStep, Edge, ForwardStep, OpNode, SavedTensor

_set = object.__setattr__
_new = object.__new__
# BaseModel's slots, set through their descriptors (as app.records does)
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def positional_maker(cls: type[BaseModel]) -> Callable[..., Any]:
    """A constructor of cls that takes every field by position, in declaration order, and
    checks nothing: what app.records.maker gives, without the cost of passing a record's
    fields by keyword, where a recording makes one record per autograd node."""
    maker(cls)  # the same checks of the field names
    names = tuple(cls.model_fields)
    fields = ", ".join(f"{n!r}: {n}" for n in names)
    source = (
        f"def make_{cls.__name__}({', '.join(names)}, /):\n"
        "    obj = _new(cls)\n"
        f"    _set(obj, '__dict__', {{{fields}}})\n"
        "    _set_fields_set(obj, every_field)\n"
        "    _set_extra(obj, None)\n"
        "    _set_private(obj, None)\n"
        "    return obj\n"
    )
    scope: dict[str, Any] = {
        "_new": _new,
        "_set": _set,
        "_set_fields_set": _set_fields_set,
        "_set_extra": _set_extra,
        "_set_private": _set_private,
        "cls": cls,
        "every_field": set(names),  # shared by every record: each field is set
    }
    exec(compile(source, f"<positional maker of {cls.__name__}>", "exec"), scope)  # noqa: S102
    return scope[f"make_{cls.__name__}"]  # type: ignore[no-any-return]


# (id, source, target)
edge_record = positional_maker(Edge)
# (id, kind, label, op, grad_fn, line, module, call, sequence_nr, variable, created_by_pass,
#  saved, constants, next, failed, look)
op_record = positional_maker(OpNode)
# (node, nodes, call, inputs, outputs, line, module, after_pass)
forward_step_record = positional_maker(ForwardStep)
# (node, grad_inputs, grad_outputs, grad_before, rule)
backward_step_record = positional_maker(BackwardStep)
# (name, tensor, value, repr)
saved_tensor_record = positional_maker(SavedTensor)
