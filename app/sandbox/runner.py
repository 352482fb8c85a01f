"""Execute one user program: the single place where user code is compiled and run."""

from __future__ import annotations

import io
from collections.abc import Callable
from types import CodeType
from typing import Any

from app.bindings import BIND_FUNCTION, instrument
from app.sandbox import policy
from app.sandbox.capabilities import PROGRAM_MODULE, Capabilities
from app.sandbox.guard import GETATTR, SETATTR, guard_attributes

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


def compile_program(code: str, limits: policy.PolicyLimits | None = None) -> CodeType:
    """Check, instrument and compile a program (PolicyError, LimitExceeded or SyntaxError)."""
    tree = policy.check(code, limits)
    tree = guard_attributes(instrument(tree))
    return compile(tree, USER_FILENAME, "exec", dont_inherit=True)


def make_namespace(
    bind: Callable[..., None], stdout: BoundedWriter, capabilities: Capabilities
) -> dict[str, Any]:
    """The globals a program starts with: allowed builtins, a captured print, the guards."""

    def captured_print(*args: object, sep: str | None = " ", end: str | None = "\n") -> None:
        text = (" " if sep is None else str(sep)).join(str(a) for a in args)
        stdout.write(text + ("\n" if end is None else str(end)))

    return {
        "__builtins__": capabilities.builtins(captured_print),
        "__name__": PROGRAM_MODULE,
        BIND_FUNCTION: bind,
        GETATTR: capabilities.getattr,
        SETATTR: capabilities.setattr,
    }


def execute(program: CodeType, namespace: dict[str, Any]) -> None:
    """Run a compiled program in the namespace; exceptions propagate to the caller."""
    exec(program, namespace)  # noqa: S102 - the one place user code runs
