"""Execute one user program: the single place where user code is compiled and run."""

from __future__ import annotations

import ast
import builtins
import io
from collections.abc import Callable
from types import CodeType
from typing import Any

from app.bindings import BIND_FUNCTION, instrument

USER_FILENAME = "<program>"
STDOUT_LIMIT = 64 * 1024


class BoundedWriter(io.StringIO):
    """A text buffer that keeps the first `limit` characters and notes what it dropped."""

    def __init__(self, limit: int = STDOUT_LIMIT) -> None:
        super().__init__()
        self.limit = limit
        self.dropped = 0

    def write(self, s: str) -> int:
        room = self.limit - self.tell()
        if room > 0:
            super().write(s[:room])
        self.dropped += max(0, len(s) - max(room, 0))
        return len(s)

    def text(self) -> str:
        """Everything kept, with a note when output was cut."""
        kept = self.getvalue()
        if self.dropped:
            kept += f"\n[... {self.dropped} more characters of output not kept]\n"
        return kept


def compile_program(code: str) -> CodeType:
    """Parse, instrument and compile a program; raises SyntaxError with its line."""
    tree = ast.parse(code, filename=USER_FILENAME, mode="exec")
    tree = ast.fix_missing_locations(instrument(tree))
    return compile(tree, USER_FILENAME, "exec", dont_inherit=True)


def make_namespace(
    bind: Callable[..., None], stdout: BoundedWriter, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The globals a program starts with: builtins with a captured print, and the bind hook."""

    def captured_print(*args: object, sep: str | None = " ", end: str | None = "\n") -> None:
        text = (" " if sep is None else str(sep)).join(str(a) for a in args)
        stdout.write(text + ("\n" if end is None else str(end)))

    safe_builtins = dict(vars(builtins))
    safe_builtins["print"] = captured_print
    namespace: dict[str, Any] = {
        "__builtins__": safe_builtins,
        "__name__": "program",
        BIND_FUNCTION: bind,
    }
    namespace.update(extra or {})
    return namespace


def execute(program: CodeType, namespace: dict[str, Any]) -> None:
    """Run a compiled program in the namespace; exceptions propagate to the caller."""
    exec(program, namespace)  # noqa: S102 - the one place user code runs
