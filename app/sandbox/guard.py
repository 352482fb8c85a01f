"""Rewrite a checked program so every attribute read and write goes through a runtime guard."""

from __future__ import annotations

import ast
import itertools

GETATTR = "__ae_getattr__"
SETATTR = "__ae_setattr__"
TEMP_PREFIX = "__ae_tmp"


def _call(name: str, *args: ast.expr) -> ast.Call:
    return ast.Call(func=ast.Name(name, ast.Load()), args=list(args), keywords=[])


class _AttributeGuard(ast.NodeTransformer):
    """obj.name -> __ae_getattr__(obj, 'name'); obj.name = v -> __ae_setattr__(obj, 'name', v)."""

    def __init__(self) -> None:
        self._temps = itertools.count()

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.ctx, ast.Load):
            return ast.copy_location(_call(GETATTR, node.value, ast.Constant(node.attr)), node)
        return node

    def _temp(self) -> str:
        return f"{TEMP_PREFIX}{next(self._temps)}"

    def _store(self, target: ast.Attribute, value: ast.expr, anchor: ast.AST) -> ast.stmt:
        stmt = ast.Expr(_call(SETATTR, target.value, ast.Constant(target.attr), value))
        return ast.copy_location(stmt, anchor)

    def _split_targets(self, target: ast.expr, after: list[ast.stmt], anchor: ast.AST) -> ast.expr:
        """Replace attribute targets (also inside tuples) by temporaries stored afterwards."""
        if isinstance(target, ast.Attribute):
            target.value = self.visit(target.value)
            temp = self._temp()
            after.append(self._store(target, ast.Name(temp, ast.Load()), anchor))
            return ast.copy_location(ast.Name(temp, ast.Store()), target)
        if isinstance(target, (ast.Tuple, ast.List)):
            target.elts = [self._split_targets(e, after, anchor) for e in target.elts]
            return target
        if isinstance(target, ast.Starred):
            target.value = self._split_targets(target.value, after, anchor)
            return target
        return self.visit(target)

    def visit_Assign(self, node: ast.Assign) -> ast.AST | list[ast.stmt]:
        node.value = self.visit(node.value)
        after: list[ast.stmt] = []
        node.targets = [self._split_targets(t, after, node) for t in node.targets]
        return [node, *after] if after else node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST | list[ast.stmt]:
        node.annotation = ast.copy_location(ast.Constant(None), node.annotation)
        if node.value is None:
            return ast.copy_location(ast.Pass(), node)
        assign = ast.copy_location(ast.Assign(targets=[node.target], value=node.value), node)
        return self.visit_Assign(assign)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST | list[ast.stmt]:
        if not isinstance(node.target, ast.Attribute):
            node.value = self.visit(node.value)
            node.target = self.visit(node.target)
            return node
        target = node.target
        obj_temp, value_temp = self._temp(), self._temp()
        obj = self.visit(target.value)
        read = _call(GETATTR, ast.Name(obj_temp, ast.Load()), ast.Constant(target.attr))
        statements = [
            ast.Assign(targets=[ast.Name(obj_temp, ast.Store())], value=obj),
            ast.Assign(targets=[ast.Name(value_temp, ast.Store())], value=read),
            ast.AugAssign(
                target=ast.Name(value_temp, ast.Store()), op=node.op, value=self.visit(node.value)
            ),
            ast.Expr(
                _call(
                    SETATTR,
                    ast.Name(obj_temp, ast.Load()),
                    ast.Constant(target.attr),
                    ast.Name(value_temp, ast.Load()),
                )
            ),
        ]
        return [ast.copy_location(s, node) for s in statements]


def guard_attributes(tree: ast.Module) -> ast.Module:
    """The same program with guarded attribute access (the tree's depth is bounded by policy)."""
    guarded = _AttributeGuard().visit(tree)
    assert isinstance(guarded, ast.Module)
    return ast.fix_missing_locations(guarded)
