"""While the program runs: its warnings become notes, and gradient checks run unrecorded."""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Callable
from typing import Any

import torch

from app.recorder.recorder import Recorder
from app.recorder.source import user_line


def printed(value: object) -> str:
    """str(value), or a stand-in when the program's own __str__ fails (as Python prints it)."""
    try:
        text = str(value)
    except Exception:
        return "<exception str() failed>"
    return text if isinstance(text, str) else ""


class WarningsAsNotes(warnings.catch_warnings):
    """Warnings raised while the program runs become notes with the program's line."""

    def __init__(self, recorder: Recorder, limit: int = 50) -> None:
        super().__init__()
        self.recorder = recorder
        self.limit = limit

    def __enter__(self) -> None:
        super().__enter__()
        warnings.simplefilter("default")
        seen: set[tuple[str, int | None]] = set()

        def show(
            message: Warning | str, category: type[Warning], *args: object, **kw: object
        ) -> None:
            line = user_line()
            key = (str(message), line)
            if key in seen or len(seen) >= self.limit:
                return
            seen.add(key)
            where = f" (line {line})" if line is not None else ""
            self.recorder.notes.note(
                "warning" if line is not None else "warningNoLine",
                f"{category.__name__}{where}: {message}",
                category=category.__name__,
                line=line,
                message=printed(message),
            )

        warnings.showwarning = show


class QuietChecks:
    """gradcheck and gradgradcheck call the function they check thousands of times: they run
    unrecorded, with a note, and the program's own calls of the function are recorded."""

    NAMES = ("gradcheck", "gradgradcheck")

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.saved: list[tuple[Any, str, Any]] = []

    def _quiet(self, check: Callable[..., Any]) -> Callable[..., Any]:
        recorder = self.recorder

        @functools.wraps(check)
        def quiet_check(*args: Any, **kwargs: Any) -> Any:
            if recorder.busy or recorder.in_pass:
                return check(*args, **kwargs)
            recorder.summaries.flush()
            with recorder.quiet():
                result = check(*args, **kwargs)
            name = check.__name__
            recorder.notes.note_once(
                "quietCheck",
                f"{name} ran without being recorded: it calls the function it checks "
                "thousands of times.",
                check=name,
            )
            return result

        return quiet_check

    def __enter__(self) -> None:
        module = sys.modules.get("torch.autograd.gradcheck")
        for owner in (torch.autograd, module):
            for name in self.NAMES:
                check = getattr(owner, name, None) if owner is not None else None
                if callable(check):
                    self.saved.append((owner, name, check))
                    setattr(owner, name, self._quiet(check))

    def __exit__(self, *exc: object) -> None:
        for owner, name, check in reversed(self.saved):
            setattr(owner, name, check)
        self.saved = []
