"""Where in the program a call was made: its line, the source text of its expression, the
top-level statement and loops around it."""

from __future__ import annotations

import ast
import functools
import os
import re
import sys
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

import torch
from torch import nn

PROGRAM_FILENAME = "<program>"  # the file name a recorded program is compiled under
TORCH_DIR = str(Path(torch.__file__).resolve().parent) + os.sep
_TORCH_MODULES_DIR = str(Path(nn.modules.__file__).resolve().parent) + os.sep
EXPRESSION_LABEL_CHARS = 28  # a box label: about 270 px at the graph's 16 px font
EXPRESSION_CHARS = 200  # the full text kept for the inspector


def user_line(filename: str = PROGRAM_FILENAME) -> int | None:
    """The line of the innermost program frame on the stack."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_filename == filename:
            return frame.f_lineno
        frame = frame.f_back
    return None


def top_level_frame() -> FrameType | None:
    """The frame of the program's top level."""
    frame: FrameType | None = sys._getframe(1)
    found = None
    while frame is not None:
        if frame.f_code.co_filename == PROGRAM_FILENAME:
            found = frame
        frame = frame.f_back
    return found


def top_level_line() -> int | None:
    """The line the program's top level is running (inside a call, the line of the call)."""
    frame: FrameType | None = sys._getframe(1)
    line = None
    while frame is not None:
        if frame.f_code.co_filename == PROGRAM_FILENAME:
            line = frame.f_lineno
        frame = frame.f_back
    return line


def calling_program_frame(depth: int) -> FrameType | None:
    """The program's frame that made the torch call being recorded, when the program made the
    call itself (not a module's forward or another torch function on its behalf)."""
    frame: FrameType | None = sys._getframe(depth + 1)
    while frame is not None and frame.f_code.co_filename.startswith(TORCH_DIR):
        if frame.f_code.co_filename.startswith(_TORCH_MODULES_DIR):
            return None
        frame = frame.f_back
    if frame is None or frame.f_code.co_filename != PROGRAM_FILENAME:
        return None
    return frame


def call_site(depth: int) -> tuple[int | None, FrameType | None]:
    """In one walk up the stack: the line of the innermost program frame, and the program's
    frame that made the torch call being recorded when the program made it itself (as
    calling_program_frame gives)."""
    frame: FrameType | None = sys._getframe(depth + 1)
    direct = True
    while frame is not None and frame.f_code.co_filename.startswith(TORCH_DIR):
        direct = direct and not frame.f_code.co_filename.startswith(_TORCH_MODULES_DIR)
        frame = frame.f_back
    caller = frame if direct and frame is not None else None
    while frame is not None and frame.f_code.co_filename != PROGRAM_FILENAME:
        frame = frame.f_back
    if frame is None:
        return None, None
    return frame.f_lineno, caller if caller is frame else None


@functools.lru_cache(maxsize=256)
def _positions(code: CodeType) -> tuple[tuple[int | None, ...], ...]:
    """Source positions of every instruction of a code object."""
    return tuple(code.co_positions())


def source_expression(
    lines: list[str], code: CodeType, lasti: int
) -> tuple[str | None, int | None]:
    """The source expression of the instruction at lasti ('torch.ones(3)'), in full (up to
    EXPRESSION_CHARS), and its line."""
    index = lasti // 2
    positions = _positions(code)
    if index >= len(positions):
        return None, None
    start, end, column, end_column = positions[index]
    if start is None or end is None or column is None or end_column is None:
        return None, start
    if not 0 < start <= end <= len(lines) or end - start > 20:
        return None, start
    raw = [line.encode() for line in lines[start - 1 : end]]  # columns count UTF-8 bytes
    raw[-1] = raw[-1][:end_column]
    raw[0] = raw[0][column:]
    text = " ".join(part.decode(errors="replace").strip() for part in raw)
    text = re.sub(r"\s+", " ", text).strip()
    return shorten(text, EXPRESSION_CHARS) or None, start


def shorten(text: str, limit: int = EXPRESSION_LABEL_CHARS) -> str:
    """text cut to limit characters, with an ellipsis where it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def source_text(lines: list[str], code: CodeType, lasti: int) -> tuple[str | None, int | None]:
    """The source expression of the instruction at lasti, shortened for a box, and its line."""
    text, line = source_expression(lines, code, lasti)
    return (shorten(text) if text else None), line


_SIMPLE_RANGE_ARGS = (ast.Constant, ast.Name, ast.BinOp, ast.UnaryOp, ast.operator, ast.unaryop)


def range_end(loop: ast.For, names: dict[str, Any]) -> tuple[str, int] | None:
    """(variable, last value) of `for v in range(a, b, c)` whose arguments are constants, names
    and arithmetic (nothing is called); None for any other loop."""
    call = loop.iter
    if not (
        isinstance(loop.target, ast.Name)
        and isinstance(call, ast.Call)
        and isinstance(call.func, ast.Name)
        and call.func.id == "range"
        and not call.keywords
        and all(
            isinstance(part, (*_SIMPLE_RANGE_ARGS, ast.Load))
            for arg in call.args
            for part in ast.walk(arg)
        )
    ):
        return None
    try:
        steps = eval(compile(ast.Expression(call), "<range>", "eval"), dict(names))  # noqa: S307
    except Exception:  # noqa: BLE001 - a name not yet bound, a shadowed range: not known
        return None
    if not isinstance(steps, range) or not steps:
        return None
    return loop.target.id, steps[-1]


@dataclass
class ProgramSource:
    """The program's text, and where it made each constant tensor, to label boxes by the
    expressions that made them."""

    lines: list[str] = field(default_factory=list)
    _made_at: dict[int, tuple[CodeType, int, weakref.ref[torch.Tensor]]] = field(
        default_factory=dict
    )
    _top_statements: list[ast.stmt] | None = None
    _expressions: dict[tuple[CodeType, int], str | None] = field(default_factory=dict)

    def remember_constants(self, outputs: list[torch.Tensor], limit: int) -> None:
        """Where the program made new constant tensors (at most limit of them)."""
        if not self.lines or len(self._made_at) >= limit:
            return
        constants = [t for t in outputs if t.grad_fn is None]
        if not constants:
            return
        frame = calling_program_frame(3)
        if frame is None:
            return
        for t in constants:
            self._made_at[id(t)] = (frame.f_code, frame.f_lasti, weakref.ref(t))

    def constant_expression(self, t: torch.Tensor) -> tuple[str | None, int | None] | None:
        """(expression, line) of the program's source that made constant t; None if unknown."""
        made = self._made_at.get(id(t))
        if made is None or made[2]() is not t:
            return None
        return source_expression(self.lines, made[0], made[1])

    def output_expressions(self, frame: FrameType | None, count: int) -> list[str | None]:
        """The program's source text of the call being recorded, for each of its count outputs
        ('x * w'; 'x.chunk(2)[0]', ...), from the program's frame that made the call (None
        where the program did not make it itself)."""
        if frame is None or not self.lines or not count:
            return [None] * count
        key = (frame.f_code, frame.f_lasti)
        text = self._expressions.get(key, "")
        if text == "":  # each call site's text is read once: loops come back to it
            text = self._expressions[key] = source_expression(self.lines, *key)[0]
        if text is None or count == 1:
            return [text] * count
        return [f"{text}[{i}]" for i in range(count)]

    def top_statement(self, line: int | None) -> ast.stmt | None:
        """The program's top-level statement that holds line."""
        if line is None or not self.lines:
            return None
        if self._top_statements is None:
            try:
                self._top_statements = ast.parse("\n".join(self.lines)).body
            except SyntaxError:
                self._top_statements = []
        for statement in self._top_statements:
            if statement.lineno <= line <= (statement.end_lineno or statement.lineno):
                return statement
        return None

    def top_statement_span(self, line: int | None) -> tuple[int, int] | None:
        """First and last line of the program's top-level statement that holds line."""
        statement = self.top_statement(line)
        return None if statement is None else (statement.lineno, statement.end_lineno or line)

    def forget_constants(self) -> None:
        """Drop what the program's tensors were made by (the recording is over)."""
        self._made_at = {}
