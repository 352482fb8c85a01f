"""The courtesy check of a program's source: clear messages for what cannot work here.

This is not the wall (the jail and the OS limits are, see docs/security.md). It refuses only what
cannot work inside the jail, or would hide a mistake, and says what to do instead; everything
else, underscored names, generators, try/except, `dir`, `type`, `getattr` and any import
included, runs unchanged.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from app.errors import LimitExceeded, PolicyError

PROGRAM_FILENAME = "<program>"
NO_PROCESSES = "programs cannot start other processes here; run the code in this program instead"
NO_NETWORK = "there is no network here; build the tensors in the program instead of downloading"
NO_FILES = "programs cannot write files here; print the values instead (they appear below)"
NO_DISPLAY = "there is no display here; draw with matplotlib, whose figures appear below"

# module (or its first dotted part) -> why importing it cannot work in the jail
REFUSED_IMPORTS: dict[str, str] = {
    "subprocess": NO_PROCESSES,
    "multiprocessing": NO_PROCESSES,
    "pty": NO_PROCESSES,
    "socket": NO_NETWORK,
    "ssl": NO_NETWORK,
    "requests": NO_NETWORK,
    "urllib.request": NO_NETWORK,
    "http.client": NO_NETWORK,
    "http.server": NO_NETWORK,
    "ftplib": NO_NETWORK,
    "smtplib": NO_NETWORK,
    "webbrowser": NO_NETWORK,
    "tkinter": NO_DISPLAY,
    "turtle": NO_DISPLAY,
}
# dotted call (after import aliases are resolved) -> why it cannot work
REFUSED_CALLS: dict[str, str] = {
    "os.system": NO_PROCESSES,
    "os.popen": NO_PROCESSES,
    "os.fork": NO_PROCESSES,
    "os.forkpty": NO_PROCESSES,
    "os.execv": NO_PROCESSES,
    "os.execve": NO_PROCESSES,
    "os.execvp": NO_PROCESSES,
    "os.execl": NO_PROCESSES,
    "os.execlp": NO_PROCESSES,
    "os.spawnv": NO_PROCESSES,
    "os.posix_spawn": NO_PROCESSES,
    "os.kill": NO_PROCESSES,
    "os.remove": NO_FILES,
    "os.mkdir": NO_FILES,
    "os.makedirs": NO_FILES,
    "torch.save": NO_FILES,
    "numpy.save": NO_FILES,
    "numpy.savez": NO_FILES,
    "numpy.savetxt": NO_FILES,
    "torch.hub.load": NO_NETWORK,
    "torch.hub.load_state_dict_from_url": NO_NETWORK,
    "torch.hub.download_url_to_file": NO_NETWORK,
    "input": "input() has no keyboard here; assign the value in the program instead",
}
WRITE_MODES = frozenset("wax+")


@dataclass(frozen=True)
class PolicyLimits:
    """Size bounds of a program's source."""

    max_bytes: int = 20_000
    max_lines: int = 5000
    max_nodes: int = 20_000
    max_nesting: int = 64


def _refuse(node: ast.AST, message: str) -> PolicyError:
    col = getattr(node, "col_offset", None)
    return PolicyError(message, getattr(node, "lineno", None), None if col is None else col + 1)


def _dotted(node: ast.AST) -> list[str] | None:
    """['torch', 'hub', 'load'] for an attribute chain of names, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return parts[::-1]


def check_size(code: str, limits: PolicyLimits) -> None:
    """LimitExceeded when the source is over its byte or line limit."""
    size = len(code.encode("utf-8", "surrogatepass"))
    if size > limits.max_bytes:
        raise LimitExceeded(
            "code_bytes",
            f"the program is {size} bytes; the limit is {limits.max_bytes} "
            "(set AE_MAX_CODE_BYTES to change it)",
        )
    lines = code.count("\n") + 1
    if lines > limits.max_lines:
        raise LimitExceeded(
            "code_lines",
            f"the program has {lines} lines; the limit is {limits.max_lines} "
            "(set AE_MAX_CODE_LINES to change it)",
        )


class _Checker:
    """Walks a tree once, resolving import aliases, and refuses what cannot work here."""

    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}  # local name -> dotted module or object path

    def _refused_import(self, module: str) -> str | None:
        parts = module.split(".")
        for end in range(len(parts), 0, -1):
            reason = REFUSED_IMPORTS.get(".".join(parts[:end]))
            if reason is not None:
                return reason
        return None

    def visit_import(self, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                reason = self._refused_import(alias.name)
                if reason:
                    raise _refuse(node, f"import {alias.name}: {reason}")
                local = alias.asname or alias.name.split(".")[0]
                self.aliases[local] = alias.name if alias.asname else local
            return
        module = node.module or ""
        for alias in node.names:
            full = f"{module}.{alias.name}" if module else alias.name
            reason = self._refused_import(module) or self._refused_import(full)
            if reason:
                raise _refuse(node, f"from {module} import {alias.name}: {reason}")
            self.aliases[alias.asname or alias.name] = full

    def visit_call(self, node: ast.Call) -> None:
        parts = _dotted(node.func)
        if parts is None:
            return
        head = self.aliases.get(parts[0], parts[0])
        name = ".".join([head, *parts[1:]])
        if name.startswith("np."):
            name = "numpy." + name[3:]
        reason = REFUSED_CALLS.get(name)
        if reason is None and name.startswith("os.exec"):
            reason = NO_PROCESSES
        if reason is not None:
            raise _refuse(node, f"{'.'.join(parts)}(): {reason}")
        if name == "open" and self._opens_for_writing(node):
            raise _refuse(node, f"open() for writing: {NO_FILES}")

    @staticmethod
    def _opens_for_writing(node: ast.Call) -> bool:
        mode: ast.expr | None = node.args[1] if len(node.args) > 1 else None
        for keyword in node.keywords:
            if keyword.arg == "mode":
                mode = keyword.value
        return (
            isinstance(mode, ast.Constant)
            and isinstance(mode.value, str)
            and bool(WRITE_MODES & set(mode.value))
        )


def check(code: str, limits: PolicyLimits | None = None) -> ast.Module:
    """Parse and check a program; its tree, or PolicyError / LimitExceeded / SyntaxError."""
    limits = limits or PolicyLimits()
    check_size(code, limits)
    if "\x00" in code:
        raise PolicyError("the program contains a NUL character", None, None)
    try:
        tree = ast.parse(code, filename=PROGRAM_FILENAME, mode="exec")
    except (RecursionError, MemoryError):
        raise LimitExceeded("nesting", "the program nests too deeply to be parsed") from None
    checker = _Checker()
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
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            checker.visit_import(node)
        elif isinstance(node, ast.Call):
            checker.visit_call(node)
        stack.extend((child, depth + 1) for child in reversed(list(ast.iter_child_nodes(node))))
    return tree
