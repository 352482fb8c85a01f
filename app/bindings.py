"""Instrument a program's AST so that every variable binding reports (name, value, line)."""

from __future__ import annotations

import ast

BIND_FUNCTION = "__ae_bind__"
STATEMENT_LISTS = ("body", "orelse", "finalbody")
SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


def _target_names(target: ast.expr) -> list[str]:
    """Plain names bound by an assignment target, in order (tuples unpacked)."""
    names: list[str] = []
    stack = [target]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Name):
            names.append(node.id)
        elif isinstance(node, ast.Starred):
            stack.append(node.value)
        elif isinstance(node, (ast.Tuple, ast.List)):
            stack.extend(reversed(node.elts))
    return names


def _bound_names(stmt: ast.stmt) -> list[str]:
    if isinstance(stmt, ast.Assign):
        return [n for t in stmt.targets for n in _target_names(t)]
    if isinstance(stmt, (ast.AnnAssign, ast.AugAssign)) and stmt.value is not None:
        return _target_names(stmt.target)
    return []


def _bind_call(names: list[str], line: int, module_scope: bool, anchor: ast.AST) -> ast.stmt:
    pairs = [
        ast.Tuple(elts=[ast.Constant(n), ast.Name(n, ast.Load())], ctx=ast.Load()) for n in names
    ]
    call = ast.Call(
        func=ast.Name(BIND_FUNCTION, ast.Load()),
        args=[ast.Constant(line), ast.Constant(module_scope), *pairs],
        keywords=[],
    )
    stmt = ast.Expr(call)
    for node in ast.walk(stmt):
        ast.copy_location(node, anchor)
    return stmt


def instrument(tree: ast.Module) -> ast.Module:
    """Insert a bind call after each assignment and at the top of each for-loop body."""
    stack: list[tuple[ast.AST, bool]] = [(tree, True)]
    while stack:
        node, module_scope = stack.pop()
        inner_scope = module_scope and not isinstance(node, SCOPES)
        for field in STATEMENT_LISTS:
            statements = getattr(node, field, None)
            if not isinstance(statements, list):
                continue
            rewritten: list[ast.stmt] = []
            if field == "body" and isinstance(node, (ast.For, ast.AsyncFor)):
                loop_names = _target_names(node.target)
                if loop_names:
                    rewritten.append(_bind_call(loop_names, node.lineno, inner_scope, node))
            for stmt in statements:
                rewritten.append(stmt)
                names = _bound_names(stmt)
                if names:
                    rewritten.append(_bind_call(names, stmt.lineno, inner_scope, stmt))
            setattr(node, field, rewritten)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.stmt, ast.excepthandler, ast.match_case)):
                stack.append((child, inner_scope))
    return tree
