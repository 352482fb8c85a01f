"""What a program may say: a static allow-list check of its syntax tree."""

from __future__ import annotations

import ast
import string
from dataclasses import dataclass

from app.errors import LimitExceeded, PolicyError

# Statement and expression types a program may use; anything else is refused by name.
ALLOWED_NODES: frozenset[type[ast.AST]] = frozenset(
    {
        ast.Module,
        ast.Expr,
        ast.Assign,
        ast.AugAssign,
        ast.AnnAssign,
        ast.Pass,
        ast.Break,
        ast.Continue,
        ast.If,
        ast.For,
        ast.While,
        ast.With,
        ast.withitem,
        ast.FunctionDef,
        ast.ClassDef,
        ast.Return,
        ast.arguments,
        ast.arg,
        ast.Import,
        ast.ImportFrom,
        ast.alias,
        ast.Lambda,
        ast.BinOp,
        ast.UnaryOp,
        ast.BoolOp,
        ast.Compare,
        ast.Call,
        ast.keyword,
        ast.IfExp,
        ast.Name,
        ast.Attribute,
        ast.Subscript,
        ast.Slice,
        ast.Starred,
        ast.Tuple,
        ast.List,
        ast.Dict,
        ast.Set,
        ast.Constant,
        ast.JoinedStr,
        ast.FormattedValue,
        ast.ListComp,
        ast.DictComp,
        ast.SetComp,
        ast.comprehension,
        ast.Assert,
        ast.Load,
        ast.Store,
        ast.Add,
        ast.Sub,
        ast.Mult,
        ast.MatMult,
        ast.Div,
        ast.FloorDiv,
        ast.Mod,
        ast.Pow,
        ast.LShift,
        ast.RShift,
        ast.BitOr,
        ast.BitXor,
        ast.BitAnd,
        ast.UAdd,
        ast.USub,
        ast.Not,
        ast.Invert,
        ast.And,
        ast.Or,
        ast.Eq,
        ast.NotEq,
        ast.Lt,
        ast.LtE,
        ast.Gt,
        ast.GtE,
        ast.Is,
        ast.IsNot,
        ast.In,
        ast.NotIn,
    }
)

# Why the most common refusals happen, in words a learner understands.
REFUSED_NODE_REASONS: dict[type[ast.AST], str] = {
    ast.Try: "try/except is not available: errors are shown with their line instead",
    ast.Raise: "raise is not available",
    ast.Global: "global is not available",
    ast.Nonlocal: "nonlocal is not available",
    ast.Delete: "del is not available",
    ast.GeneratorExp: "generator expressions are not available; use a list comprehension",
    ast.Yield: "generators (yield) are not available",
    ast.YieldFrom: "generators (yield from) are not available",
    ast.Await: "async code is not available",
    ast.AsyncFunctionDef: "async code is not available",
    ast.AsyncFor: "async code is not available",
    ast.AsyncWith: "async code is not available",
    ast.NamedExpr: "the walrus operator is not available",
    ast.Match: "match statements are not available",
}

ALLOWED_IMPORTS: dict[str, str] = {  # module -> the only name it may be bound to
    "torch": "torch",
    "torch.nn": "nn",
    "torch.nn.functional": "F",
    "torch.optim": "optim",
    "math": "math",
    "numpy": "np",
}
ALLOWED_FROM_IMPORTS: dict[tuple[str, str], str] = {
    ("torch", "nn"): "nn",
    ("torch", "optim"): "optim",
    ("torch.nn", "functional"): "F",
}
MODULE_ALIASES = frozenset(ALLOWED_IMPORTS.values())

REFUSED_NAMES = frozenset(
    {
        "exec",
        "eval",
        "open",
        "getattr",
        "setattr",
        "delattr",
        "hasattr",
        "vars",
        "globals",
        "locals",
        "compile",
        "__import__",
        "breakpoint",
        "dir",
        "type",
        "object",
        "memoryview",
        "classmethod",
        "property",
        "format",
        "exit",
        "quit",
        "help",
    }
)
# Attributes that lead from ordinary objects to frames, code and globals.
REFUSED_ATTRIBUTES = frozenset(
    {
        "gi_frame",
        "gi_code",
        "gi_yieldfrom",
        "gi_running",
        "cr_frame",
        "cr_code",
        "cr_await",
        "ag_frame",
        "ag_code",
        "f_globals",
        "f_locals",
        "f_builtins",
        "f_back",
        "f_code",
        "f_trace",
        "tb_frame",
        "tb_next",
        "co_code",
        "co_consts",
        "co_names",
        "func_globals",
        "func_code",
        "mro",
        "format_map",
    }
)
DEFINABLE_DUNDERS = frozenset({"__init__"})
GRAD_CONTEXTS = frozenset({"no_grad", "enable_grad", "set_grad_enabled", "inference_mode"})
CLASS_BASES = frozenset({"Module", "Function"})


@dataclass(frozen=True)
class PolicyLimits:
    """Size bounds of a program's source."""

    max_bytes: int = 20_000
    max_lines: int = 400
    max_nodes: int = 20_000
    max_nesting: int = 64


def _refuse(node: ast.AST, message: str) -> PolicyError:
    return PolicyError(message, getattr(node, "lineno", None), _col(node))


def _col(node: ast.AST) -> int | None:
    col = getattr(node, "col_offset", None)
    return None if col is None else col + 1


def _dotted(node: ast.AST) -> str | None:
    """'torch.nn.Module' for an attribute chain of names, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _is_super_init(node: ast.Attribute) -> bool:
    """super().__init__ or super(Cls, self).__init__."""
    value = node.value
    return (
        node.attr == "__init__"
        and isinstance(value, ast.Call)
        and isinstance(value.func, ast.Name)
        and value.func.id == "super"
    )


def _check_name(name: str, node: ast.AST, what: str, reading: bool = False) -> None:
    if name.startswith("_"):
        raise _refuse(node, f"{what} '{name}' starts with '_': such names are not available")
    if reading and name in REFUSED_NAMES:
        raise _refuse(node, f"'{name}' is not available in the explorer")


def _check_format_template(node: ast.Call) -> None:
    """str.format only on a literal template whose fields hold no attribute or index lookups."""
    func = node.func
    assert isinstance(func, ast.Attribute)
    template = func.value
    if not (isinstance(template, ast.Constant) and isinstance(template.value, str)):
        raise _refuse(node, ".format() is only available on a literal string; use an f-string")
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template.value) if f is not None]
    except ValueError as exc:
        raise _refuse(node, f"malformed format string: {exc}") from None
    for field in fields:
        if "." in field or "[" in field:
            raise _refuse(
                node, "format fields may not look up attributes or items; use an f-string"
            )


def _check_import(node: ast.Import | ast.ImportFrom) -> None:
    if isinstance(node, ast.Import):
        for alias in node.names:
            bound = alias.asname or alias.name.split(".")[0]
            expected = ALLOWED_IMPORTS.get(alias.name)
            if expected is None or (alias.asname is not None and alias.asname != expected):
                raise _refuse(node, _import_help(alias.name))
            if alias.asname is None and "." in alias.name and bound != "torch":
                raise _refuse(node, _import_help(alias.name))
        return
    if node.level or node.module is None:
        raise _refuse(node, "relative imports are not available")
    for alias in node.names:
        expected = ALLOWED_FROM_IMPORTS.get((node.module, alias.name))
        if expected is None or (alias.asname or alias.name) != expected:
            raise _refuse(node, _import_help(f"{node.module}.{alias.name}"))


def _import_help(name: str) -> str:
    allowed = ", ".join(
        f"import {m}" + (f" as {a}" if a != m else "") for m, a in ALLOWED_IMPORTS.items()
    )
    return f"import of '{name}' is not available; allowed: {allowed}"


def _check_function(node: ast.FunctionDef | ast.Lambda) -> None:
    if isinstance(node, ast.FunctionDef):
        if node.name not in DEFINABLE_DUNDERS:
            _check_name(node.name, node, "function")
        for decorator in node.decorator_list:
            if not (isinstance(decorator, ast.Name) and decorator.id == "staticmethod"):
                raise _refuse(decorator, "only the @staticmethod decorator is available")
        if node.returns is not None:
            node.returns = None  # annotations are not evaluated for meaning; drop them
    args = node.args
    for default in [*args.defaults, *(d for d in args.kw_defaults if d is not None)]:
        if any(isinstance(n, (ast.Call, ast.Lambda)) for n in ast.walk(default)):
            raise _refuse(default, "default argument values may not call anything")


def _check_class(node: ast.ClassDef, user_classes: set[str]) -> None:
    _check_name(node.name, node, "class")
    if node.decorator_list:
        raise _refuse(node.decorator_list[0], "class decorators are not available")
    if node.keywords:
        raise _refuse(node, "class keywords (such as metaclass=) are not available")
    if not node.bases:
        raise _refuse(node, "a class must subclass nn.Module or torch.autograd.Function")
    for base in node.bases:
        dotted = _dotted(base)
        ok = dotted is not None and (
            dotted in user_classes or dotted.split(".")[-1] in CLASS_BASES and "." in dotted
        )
        if not ok:
            raise _refuse(
                base,
                "a class may only subclass nn.Module, torch.autograd.Function "
                "or a class defined above",
            )
    user_classes.add(node.name)


def _check_with(node: ast.With) -> None:
    for item in node.items:
        call = item.context_expr
        dotted = _dotted(call.func) if isinstance(call, ast.Call) else None
        if dotted is None or dotted.split(".")[-1] not in GRAD_CONTEXTS or item.optional_vars:
            raise _refuse(
                item.context_expr,
                "with is only available for torch.no_grad(), "
                "torch.enable_grad() and torch.set_grad_enabled()",
            )


def _check_store_target(node: ast.Attribute) -> None:
    root = node.value
    while isinstance(root, ast.Attribute):
        root = root.value
    if isinstance(root, ast.Name) and root.id in MODULE_ALIASES:
        raise _refuse(
            node,
            f"'{_dotted(node) or node.attr}' is read-only: the torch, nn, F, "
            "optim, math and np modules cannot be changed",
        )


def check_size(code: str, limits: PolicyLimits) -> None:
    """LimitExceeded when the source is over its byte or line limit."""
    size = len(code.encode("utf-8", "surrogatepass"))
    if size > limits.max_bytes:
        raise LimitExceeded(
            "code_bytes", f"the program is {size} bytes; the limit is {limits.max_bytes}"
        )
    lines = code.count("\n") + 1
    if lines > limits.max_lines:
        raise LimitExceeded(
            "code_lines", f"the program has {lines} lines; the limit is {limits.max_lines}"
        )


def check(code: str, limits: PolicyLimits | None = None) -> ast.Module:
    """Parse and check a program; its tree, or PolicyError / LimitExceeded / SyntaxError."""
    limits = limits or PolicyLimits()
    check_size(code, limits)
    if "\x00" in code:
        raise PolicyError("the program contains a NUL character", None, None)
    try:
        tree = ast.parse(code, filename="<program>", mode="exec")
    except (RecursionError, MemoryError):
        raise LimitExceeded("nesting", "the program nests too deeply to be parsed") from None
    user_classes: set[str] = set()
    count = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > limits.max_nodes:
            raise LimitExceeded(
                "ast_nodes", f"the program has more than {limits.max_nodes} syntax nodes"
            )
        if depth > limits.max_nesting:
            raise LimitExceeded(
                "nesting", f"the program nests deeper than {limits.max_nesting} levels"
            )
        _check_node(node, user_classes)
        stack.extend((child, depth + 1) for child in reversed(list(ast.iter_child_nodes(node))))
    return tree


def _check_node(node: ast.AST, user_classes: set[str]) -> None:
    kind = type(node)
    if kind not in ALLOWED_NODES:
        reason = REFUSED_NODE_REASONS.get(
            kind, f"'{kind.__name__}' is not available in the explorer"
        )
        raise _refuse(node, reason)
    if isinstance(node, ast.Name):
        _check_name(node.id, node, "name", reading=isinstance(node.ctx, ast.Load))
    elif isinstance(node, ast.Attribute):
        if node.attr.startswith("_") and not _is_super_init(node):
            raise _refuse(
                node, f"attribute '{node.attr}' starts with '_': such attributes are not available"
            )
        if node.attr in REFUSED_ATTRIBUTES:
            raise _refuse(node, f"attribute '{node.attr}' is not available")
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            _check_store_target(node)
    elif isinstance(node, ast.arg):
        _check_name(node.arg, node, "argument")
    elif isinstance(node, ast.keyword):
        if node.arg is not None:
            _check_name(node.arg, node, "keyword")
    elif isinstance(node, ast.alias):
        pass  # checked with its import
    elif isinstance(node, (ast.Import, ast.ImportFrom)):
        _check_import(node)
    elif isinstance(node, (ast.FunctionDef, ast.Lambda)):
        _check_function(node)
    elif isinstance(node, ast.ClassDef):
        _check_class(node, user_classes)
    elif isinstance(node, ast.With):
        _check_with(node)
    elif isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "format":
            _check_format_template(node)
    elif isinstance(node, ast.Constant) and isinstance(node.value, bytes):
        raise _refuse(node, "bytes literals are not available")
