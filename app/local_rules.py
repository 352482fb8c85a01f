"""The local derivative of each known grad_fn, written with the program's names and values."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import torch

from app.loss_rules import LOSS_RULES
from app.rule_terms import elementwise, float_elementwise, grouped, rule_terms
from app.rule_text import rule_message
from app.schemas import RuleTerm
from app.step_view import (
    Operand,
    StepView,
    bracketed_shape,
    browser_number,
    literal,
    one_float,
    reduce_to,
)

Rule = Callable[[StepView], tuple[str, list[RuleTerm]]]
Local = Callable[[torch.Tensor], torch.Tensor]


def _t(name: str) -> str:
    """name transposed: Wᵀ for W, W for Wᵀ."""
    return name[:-1] if name.endswith("ᵀ") else f"{name}ᵀ"


def _unary(
    function: str,
    key: str | None,
    local: str,
    derivative: Local | None,
    on_float: Callable[[float], float] | None = None,
) -> Rule:
    """A rule of y = function(x); on_float is derivative on one number, with torch's float64
    operations in torch's order (what it cannot compute exactly so is left to the tensors)."""

    def rule(view: StepView) -> tuple[str, list[RuleTerm]]:
        x, y = view.slot_name(0) or "x", view.output
        if on_float is not None and key and view.grad_float is not None and view.wants(0):
            term = _float_unary(view, key, local.format(x=x, y=y), on_float)
            if term is not None:
                return f"{y} = {function}({x})", [term]
        saved = view.operand(key) if key else None
        if derivative is None:
            value: torch.Tensor | float | None = -1.0
        else:
            value = derivative(saved.value) if saved and saved.value is not None else None
        text = local.format(x=x, y=y)
        terms = [elementwise(view, 0, text, value, saved.shape if saved else None)]
        expression = f"{y} = -{x}" if function == "-" else f"{y} = {function}({x})"
        return expression, terms if view.wants(0) else []

    return rule


def _float_unary(
    view: StepView, key: str, local: str, on_float: Callable[[float], float]
) -> RuleTerm | None:
    """The term of a unary rule whose saved tensor is one recorded number, computed with
    floats; None where it is not, or where the term is not one number."""
    data = view.saved_data(key)[1]
    number = one_float(data)
    if data is None or number is None:
        return None
    return float_elementwise(view, 0, local, on_float(number), data.shape)


def _add(sign: float, swapped: bool = False) -> Rule:
    def rule(view: StepView) -> tuple[str, list[RuleTerm]]:
        alpha = view.number("alpha", 1)
        a = view.slot_name(0) or view.constant_name(0)
        b = view.slot_name(1) or view.constant_name(1) if len(view.op.next) > 1 else None
        if b is None:
            b = view.constant_name(1)
        scaled = lambda name: name if alpha == 1 else f"{browser_number(alpha)}·{name}"  # noqa: E731
        op = "+" if sign > 0 else "-"
        if swapped:  # rsub(a, b) = b - alpha·a
            expression = f"{view.output} = {b} - {scaled(a)}"
            first, second = -alpha, 1.0
        else:
            expression = f"{view.output} = {a} {op} {scaled(b)}"
            first, second = 1.0, sign * alpha
        return expression, rule_terms(
            view,
            (0, lambda: elementwise(view, 0, browser_number(first), float(first))),
            (1, lambda: elementwise(view, 1, browser_number(second), float(second))),
        )

    return rule


def _rsub_scalar(view: StepView) -> tuple[str, list[RuleTerm]]:
    alpha = view.number("alpha", 1)
    x = view.slot_name(0) or "x"
    c = browser_number(literal(view.op.constants[0]) or 0) if view.op.constants else "c"
    scaled = x if alpha == 1 else f"{browser_number(alpha)}·{x}"
    return f"{view.output} = {c} - {scaled}", rule_terms(
        view, (0, lambda: elementwise(view, 0, browser_number(-alpha), float(-alpha)))
    )


def _scalar_operand(view: StepView, key: str, slot: int) -> Operand:
    """A saved operand that may be a plain number (MulBackward1's other)."""
    operand = view.operand(key, slot)
    number = view.number(key, None) if operand.value is None else None
    if isinstance(number, (int, float)) and not isinstance(number, bool):
        value = view.values.number(number)
        return Operand(browser_number(number), value, [])
    return operand


def _float_operand(view: StepView, key: str, slot: int) -> Operand | None:
    """_scalar_operand with a plain float for a value that is one recorded number (no tensor
    is made for it); None where the saved tensor holds other values."""
    operand = view.float_operand(key, slot)
    if operand is None or operand.value is not None:
        return operand
    number = view.number(key, None)
    if isinstance(number, (int, float)) and not isinstance(number, bool):
        return Operand(browser_number(number), float(number), [])  # type: ignore[arg-type]
    return operand


def _float_mul(view: StepView) -> tuple[str, list[RuleTerm]] | None:
    """_mul where every number it writes is one recorded number: computed with floats, no
    tensors made; None where that does not hold."""
    a = _float_operand(view, "self", 0)
    b = _float_operand(view, "other", 1) if a is not None else None
    if a is None or b is None:
        return None
    terms = []
    for slot, local in ((0, b), (1, a)):
        if view.wants(slot):
            value: float | None = local.value  # type: ignore[assignment]  # a float here
            term = (
                float_elementwise(view, slot, local.name, value, local.shape)
                if value is not None
                else None
            )
            if term is None:
                return None
            terms.append(term)
    return f"{view.output} = {a.name} * {b.name}", terms


def _mul(view: StepView) -> tuple[str, list[RuleTerm]]:
    if view.grad_float is not None:  # one number times one number: no tensors needed
        given = list(view.plain_inputs)
        made = _float_mul(view)
        if made is not None:
            return made
        view.plain_inputs = given  # the names _float_mul took are taken again below
    a, b = _scalar_operand(view, "self", 0), _scalar_operand(view, "other", 1)
    return f"{view.output} = {a.name} * {b.name}", rule_terms(
        view,
        (0, lambda: elementwise(view, 0, b.name, b.value, b.shape)),
        (1, lambda: elementwise(view, 1, a.name, a.value, a.shape)),
    )


def _div(view: StepView) -> tuple[str, list[RuleTerm]]:
    a, b = _scalar_operand(view, "self", 0), _scalar_operand(view, "other", 1)
    inverse = 1 / b.value if b.value is not None else None
    minus = -a.value / b.value**2 if a.value is not None and b.value is not None else None
    return f"{view.output} = {a.name} / {b.name}", rule_terms(
        view,
        (0, lambda: elementwise(view, 0, f"1/{grouped(b.name)}", inverse, b.shape)),
        (1, lambda: elementwise(view, 1, f"-{a.name}/{grouped(b.name)}^2", minus, None)),
    )


def _pow_scalar(view: StepView) -> tuple[str, list[RuleTerm]]:
    x = view.operand("self", 0)
    n = view.number("exponent", None)
    if not isinstance(n, (int, float)):
        return f"{view.output} = {x.name} ** n", []
    value = n * x.value ** (n - 1) if x.value is not None else None
    power = {0: "", 1: f"·{grouped(x.name)}"}.get(
        n - 1, f"·{grouped(x.name)}^{browser_number(n - 1)}"
    )
    local = f"{browser_number(n)}{power}"
    return f"{view.output} = {x.name} ** {browser_number(n)}", rule_terms(
        view, (0, lambda: elementwise(view, 0, local, value, x.shape))
    )


def _pow_tensor(view: StepView) -> tuple[str, list[RuleTerm]]:
    a, b = view.operand("self", 0), view.operand("exponent", 1)
    y = view.operand("result")
    da = db = None
    if a.value is not None and b.value is not None:
        da = b.value * a.value ** (b.value - 1)
    if a.value is not None and y.value is not None:
        db = y.value * torch.log(a.value)
    an, bn = grouped(a.name), grouped(b.name)
    return f"{view.output} = {a.name} ** {b.name}", rule_terms(
        view,
        (0, lambda: elementwise(view, 0, f"{bn}·{an}^({bn} - 1)", da, a.shape)),
        (1, lambda: elementwise(view, 1, f"{an}^{bn}·log({an})", db, y.shape)),
    )


def _pow_base(view: StepView) -> tuple[str, list[RuleTerm]]:
    c = view.number("self", None)
    y = view.operand("result")
    x = view.slot_name(0) or "x"
    value = y.value * math.log(c) if y.value is not None and isinstance(c, (int, float)) else None
    cn = browser_number(c) if isinstance(c, (int, float)) else "c"
    return f"{view.output} = {cn} ** {x}", rule_terms(
        view, (0, lambda: elementwise(view, 0, f"{cn}^{grouped(x)}·log({cn})", value, y.shape))
    )


def _sizes(view: StepView) -> list[int] | None:
    sizes = view.number("self_sym_sizes", None)
    return list(sizes) if isinstance(sizes, (tuple, list)) else view.input_shape(0)


def _dims(view: StepView, rank: int) -> list[int]:
    dims = view.number("dim", None)
    dims = [dims] if isinstance(dims, int) else list(dims or [])
    return sorted(d % rank for d in dims) if rank else []


def _expanded(view: StepView, sizes: list[int], dims: list[int] | None) -> torch.Tensor | None:
    g = view.grad.value
    if g is None:
        return None
    if dims is not None and not view.number("keepdim", False):
        for d in dims:
            g = g.unsqueeze(d)
    return g.expand(sizes) if g.dim() else g.expand(sizes).clone()


def _sum(with_dim: bool) -> Rule:
    def rule(view: StepView) -> tuple[str, list[RuleTerm]]:
        x = view.slot_name(0) or "x"
        sizes = _sizes(view) or []
        dims = _dims(view, len(sizes)) if with_dim else None
        where = f", dim={dims[0] if len(dims) == 1 else tuple(dims)}" if dims else ""
        g = view.grad
        return f"{view.output} = sum({x}{where})", rule_terms(
            view,
            (
                0,
                lambda: view.term(
                    0,
                    "1",
                    f"expand({g.name}, {bracketed_shape(sizes)})",
                    ["expand(", g, ")"],
                    _expanded(view, sizes, dims),
                ),
            ),
        )

    return rule


def _mean(with_dim: bool) -> Rule:
    def rule(view: StepView) -> tuple[str, list[RuleTerm]]:
        x = view.slot_name(0) or "x"
        sizes = _sizes(view) or []
        dims = _dims(view, len(sizes)) if with_dim else None
        n = math.prod(sizes[d] for d in dims) if dims is not None else math.prod(sizes)
        where = f", dim={dims[0] if len(dims) == 1 else tuple(dims)}" if dims else ""
        g = view.grad
        full = _expanded(view, sizes, dims)
        value = full / n if full is not None and n else None
        return f"{view.output} = mean({x}{where})", rule_terms(
            view,
            (
                0,
                lambda: view.term(
                    0, f"1/{n}", f"expand({g.name}) / {n}", ["expand(", g, f") / {n}"], value
                ),
            ),
        )

    return rule


def _mm(view: StepView) -> tuple[str, list[RuleTerm]]:
    a, b = view.operand("self", 0), view.operand("mat2", 1)
    g = view.grad
    ga = g.value @ b.value.T if g.value is not None and b.value is not None else None
    gb = a.value.T @ g.value if g.value is not None and a.value is not None else None
    return f"{view.output} = {a.name} @ {b.name}", rule_terms(
        view,
        (0, lambda: view.term(0, _t(b.name), f"{g.name} · {_t(b.name)}", [g, " · ", b, "ᵀ"], ga)),
        (1, lambda: view.term(1, _t(a.name), f"{_t(a.name)} · {g.name}", [a, "ᵀ · ", g], gb)),
    )


def _addmm(view: StepView) -> tuple[str, list[RuleTerm]]:
    alpha, beta = view.number("alpha", 1), view.number("beta", 1)
    bias = view.slot_name(0) or view.constant_name(0, "bias")
    m1, m2 = view.operand("mat1", 1), view.operand("mat2", 2)
    g = view.grad
    gv = g.value
    shape = view.input_shape(0)
    # a factor of 1 (the default) changes no number: not multiplied, two copies fewer
    gbias = reduce_to(_times(beta, gv), shape) if gv is not None and shape is not None else None
    g1 = _times(alpha, gv) @ m2.value.T if gv is not None and m2.value is not None else None
    g2 = _times(alpha, m1.value.T) @ gv if gv is not None and m1.value is not None else None
    summed = shape is not None and g.shape is not None and list(shape) != list(g.shape)
    bias_product = f"sum({g.name})" if summed else g.name
    m1t, m2t = _t(m1.name), _t(m2.name)
    return f"{view.output} = {bias} + {m1.name} @ {m2.name}", rule_terms(
        view,
        (0, lambda: view.term(0, "1", bias_product, ["sum(", g, ")"] if summed else [g], gbias)),
        (1, lambda: view.term(1, m2t, f"{g.name} · {m2t}", [g, " · ", m2, "ᵀ"], g1)),
        (2, lambda: view.term(2, m1t, f"{m1t} · {g.name}", [m1, "ᵀ · ", g], g2)),
    )


def _times(factor: float, t: torch.Tensor) -> torch.Tensor:
    """factor * t, which is t itself where factor is 1 and t a floating tensor."""
    return t if factor == 1 and t.is_floating_point() else factor * t


def _mv(view: StepView) -> tuple[str, list[RuleTerm]]:
    a, v = view.operand("self", 0), view.operand("vec", 1)
    g = view.grad
    ga = torch.outer(g.value, v.value) if g.value is not None and v.value is not None else None
    gv = a.value.T @ g.value if g.value is not None and a.value is not None else None
    return f"{view.output} = {a.name} @ {v.name}", rule_terms(
        view,
        (0, lambda: view.term(0, v.name, f"{g.name} ⊗ {v.name}", [g, " ⊗ ", v], ga)),
        (1, lambda: view.term(1, _t(a.name), f"{_t(a.name)} · {g.name}", [a, "ᵀ · ", g], gv)),
    )


def _dot(view: StepView) -> tuple[str, list[RuleTerm]]:
    a, b = view.operand("self", 0), view.operand("tensor", 1)
    return f"{view.output} = dot({a.name}, {b.name})", rule_terms(
        view,
        (0, lambda: elementwise(view, 0, b.name, b.value, b.shape)),
        (1, lambda: elementwise(view, 1, a.name, a.value, a.shape)),
    )


def _shape_op(
    expression: str,
    product: str,
    move: Callable[[StepView], torch.Tensor],
    words: str | None = None,
) -> Rule:
    """A rule that only moves gradients about: product is a formula (never prose) over
    {g} (the gradient), {x}, {y}, {sizes}, {where} and saved numbers; words names the message
    that says it in words."""
    keys = [
        key
        for key in ("dim", "dim0", "dim1", "index", "start", "end", "step")
        if any("{" + key + "}" in text for text in (expression, product))
    ]

    def rule(view: StepView) -> tuple[str, list[RuleTerm]]:
        x, g = view.slot_name(0) or "x", view.grad
        names = {"x": x, "y": view.output, "g": g.name, "sizes": bracketed_shape(_sizes(view))}
        for key in keys:
            names[key] = str(view.number(key, ""))
        names["where"] = _where(view)
        text = product.format(**names)
        head, _, tail = text.partition(g.name)
        value = move(view) if g.value is not None else None
        message = None
        if words is not None:
            dim, index = (str(view.number(k, "")) for k in ("dim", "index"))
            message = rule_message(words, x=x, sizes=names["sizes"], dim=dim, index=index)
        return expression.format(**names), rule_terms(
            view, (0, lambda: view.term(0, "1", text, [head, g, tail], value, message))
        )

    return rule


def _where(view: StepView) -> str:
    """The index that select or slice took, written as Python writes it ('[:, 1]', '[1:3]')."""
    dim = view.number("dim", 0)
    if not isinstance(dim, int) or dim < 0 or dim > 8:
        return "[…]"
    if "index" in view.saved_by_name:
        taken = str(view.number("index", "…"))
    elif "start" in view.saved_by_name:
        sizes = _sizes(view) or []
        start, end, step = (view.number(k, None) for k in ("start", "end", "step"))
        size = sizes[dim] if dim < len(sizes) else None
        if isinstance(end, int) and size is not None and end >= size:
            end = None
        taken = f"{start or ''}:{'' if end is None else end}" + (
            f":{step}" if isinstance(step, int) and step != 1 else ""
        )
    else:
        return "[indices]"
    return "[" + ", ".join([":"] * dim + [taken]) + "]"


Place = Callable[[torch.Tensor, torch.Tensor], object]


def _zeros_with(view: StepView, place: Place) -> torch.Tensor:
    sizes = _sizes(view)
    g = view.grad.value
    z = torch.zeros(sizes or [], dtype=g.dtype)
    place(z, g)
    return z


def _index_of(view: StepView) -> tuple[torch.Tensor, ...] | None:
    saved = view.saved_by_name.get("indices")
    if saved is None or saved.repr is None or "…" in saved.repr:
        return None
    parsed = literal(re.sub(r"tensor\(", "(", saved.repr))
    if not isinstance(parsed, (tuple, list)) or any(i is None for i in parsed):
        return None
    return tuple(torch.tensor(i) for i in parsed)


def _index(view: StepView) -> torch.Tensor:
    indices = _index_of(view)
    if indices is None:
        raise ValueError("indices were not recorded")
    return _zeros_with(view, lambda z, g: z.index_put_(indices, g, accumulate=True))


def _slice_along(view: StepView) -> torch.Tensor:
    dim, start, end, step = (view.number(k, 0) for k in ("dim", "start", "end", "step"))
    index = [slice(None)] * dim + [slice(start, end, step)]
    return _zeros_with(view, lambda z, g: z.__setitem__(tuple(index), g))


def _softmax(log: bool) -> Rule:
    """softmax and log_softmax: the whole vector-Jacobian product, not the Jacobian's diagonal."""

    def rule(view: StepView) -> tuple[str, list[RuleTerm]]:
        x, g = view.slot_name(0) or "x", view.grad
        dim = view.number("dim", -1)
        y = view.operand("result")
        y = Operand(view.output, y.value, y.shape)
        value = None
        if log:  # the saved result is log_softmax(x): softmax(x) is its exp
            s = Operand(f"softmax({x})", y.value.exp() if y.value is not None else None, y.shape)
            if g.value is not None and s.value is not None:
                value = g.value - s.value * g.value.sum(dim, keepdim=True)
            local = f"I - 1·softmax({x})ᵀ"
            product = f"{g.name} - softmax({x}) · sum({g.name}, dim={dim})"
            parts = [g, " - ", s, " · sum(", g, f", dim={dim})"]
            message = rule_message("logSoftmax", x=x)
        else:
            if g.value is not None and y.value is not None:
                value = y.value * (g.value - (g.value * y.value).sum(dim, keepdim=True))
            local = f"diag({y.name}) - {y.name}·{y.name}ᵀ"
            product = f"{y.name} ⊙ ({g.name} - sum({g.name} ⊙ {y.name}, dim={dim}))"
            parts = [y, " ⊙ (", g, " - sum(", g, " ⊙ ", y, f", dim={dim}))"]
            message = rule_message("softmax", y=y.name)
        name = "log_softmax" if log else "softmax"
        return f"{view.output} = {name}({x}, dim={dim})", rule_terms(
            view, (0, lambda: view.term(0, local, product, parts, value, message))
        )

    return rule


RULES: dict[str, Rule] = {
    "NegBackward0": _unary("-", None, "-1", None),
    "ExpBackward0": _unary("exp", "result", "exp({x})", lambda y: y, lambda y: y),
    "LogBackward0": _unary("log", "self", "1/{x}", lambda x: 1 / x),
    "SqrtBackward0": _unary("sqrt", "result", "1/(2·sqrt({x}))", lambda y: 1 / (2 * y)),
    "SinBackward0": _unary("sin", "self", "cos({x})", torch.cos),
    "CosBackward0": _unary("cos", "self", "-sin({x})", lambda x: -torch.sin(x)),
    # torch squares with one multiplication, as y * y does
    "TanhBackward0": _unary("tanh", "result", "1 - {y}^2", lambda y: 1 - y**2, lambda y: 1 - y * y),
    "SigmoidBackward0": _unary(
        "sigmoid", "result", "{y}·(1 - {y})", lambda y: y * (1 - y), lambda y: y * (1 - y)
    ),
    "ReluBackward0": _unary(
        "relu", "result", "[{y} > 0]", lambda y: (y > 0).double(), lambda y: float(y > 0)
    ),
    "AbsBackward0": _unary("abs", "self", "sign({x})", torch.sign),
    "AddBackward0": _add(1.0),
    "AddBackward1": _add(1.0),
    "SubBackward0": _add(-1.0),
    "SubBackward1": _add(-1.0),
    "RsubBackward0": _add(-1.0, swapped=True),
    "RsubBackward1": _rsub_scalar,
    "MulBackward0": _mul,
    "MulBackward1": _mul,
    "DivBackward0": _div,
    "DivBackward1": _div,
    "PowBackward0": _pow_scalar,
    "PowBackward1": _pow_tensor,
    "PowBackward2": _pow_base,
    "SumBackward0": _sum(False),
    "SumBackward1": _sum(True),
    "MeanBackward0": _mean(False),
    "MeanBackward1": _mean(True),
    "MmBackward0": _mm,
    "AddmmBackward0": _addmm,
    "MvBackward0": _mv,
    "DotBackward0": _dot,
    "TBackward0": _shape_op("{y} = {x}ᵀ", "{g}ᵀ", lambda v: v.grad.value.t()),
    "TransposeBackward0": _shape_op(
        "{y} = {x}.transpose({dim0}, {dim1})",
        "{g}.transpose({dim0}, {dim1})",
        lambda v: v.grad.value.transpose(v.number("dim0", 0), v.number("dim1", 1)),
    ),
    "ViewBackward0": _shape_op(
        "{y} = {x}.view(…)", "{g}.view({sizes})", lambda v: v.grad.value.reshape(_sizes(v))
    ),
    "UnsafeViewBackward0": _shape_op(
        "{y} = {x}.reshape(…)", "{g}.reshape({sizes})", lambda v: v.grad.value.reshape(_sizes(v))
    ),
    "ReshapeAliasBackward0": _shape_op(
        "{y} = {x}.reshape(…)", "{g}.reshape({sizes})", lambda v: v.grad.value.reshape(_sizes(v))
    ),
    "ExpandBackward0": _shape_op(
        "{y} = {x}.expand(…)",
        "{g}.sum_to_size({sizes})",
        lambda v: reduce_to(v.grad.value, _sizes(v)),
        "expand",
    ),
    "UnsqueezeBackward0": _shape_op(
        "{y} = {x}.unsqueeze({dim})",
        "{g}.squeeze({dim})",
        lambda v: v.grad.value.squeeze(v.number("dim", 0)),
    ),
    "SqueezeBackward0": _shape_op(
        "{y} = {x}.squeeze()", "{g}.view({sizes})", lambda v: v.grad.value.reshape(_sizes(v))
    ),
    "SqueezeBackward1": _shape_op(
        "{y} = {x}.squeeze({dim})", "{g}.view({sizes})", lambda v: v.grad.value.reshape(_sizes(v))
    ),
    "SqueezeBackward2": _shape_op(
        "{y} = {x}.squeeze({dim})", "{g}.view({sizes})", lambda v: v.grad.value.reshape(_sizes(v))
    ),
    "SelectBackward0": _shape_op(
        "{y} = {x}{where}",
        "zeros({sizes}){where} ← {g}",
        lambda v: _zeros_with(
            v, lambda z, g: z.select(v.number("dim", 0), v.number("index", 0)).copy_(g)
        ),
        "select",
    ),
    "SliceBackward0": _shape_op(
        "{y} = {x}{where}", "zeros({sizes}){where} ← {g}", _slice_along, "slice"
    ),
    "IndexBackward0": _shape_op(
        "{y} = {x}[indices]", "zeros({sizes})[indices] += {g}", _index, "index"
    ),
    "SoftmaxBackward0": _softmax(False),
    "LogSoftmaxBackward0": _softmax(True),
    **LOSS_RULES,
}
