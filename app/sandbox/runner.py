"""Prepare one program and run it under the recorder: the single place where user code runs."""

from __future__ import annotations

import ast
import base64
import builtins
import contextlib
import io
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import CodeType
from typing import Any

from app.bindings import BIND_FUNCTION, instrument
from app.errors import LimitExceeded
from app.graph_notes import add_note
from app.recorder import (
    PROGRAM_FILENAME,
    ProgramExit,
    Recorder,
    TraceOptions,
    record_error,
    record_program,
    release_held_graphs,
)
from app.sandbox import policy
from app.schemas import Figure, Graph, NoteMessage

STDOUT_LIMIT = 64 * 1024
MAX_FIGURES = 8
FIGURE_DPI = 80


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


@dataclass(frozen=True)
class RunLimits:
    """Bounds of an in-process run (the sandbox adds OS limits of its own around a child)."""

    wall_seconds: float | None = None
    setting_hint: str = "AE_WALL_SECONDS"


def strip_notebook_magics(code: str) -> tuple[str, int]:
    """Replace IPython lines (`%matplotlib inline`, `!pip install x`) by `pass`; how many."""
    lines = code.split("\n")
    count = 0
    for index, line in enumerate(lines):
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")) and not stripped.startswith("!="):
            lines[index] = line[: len(line) - len(stripped)] + "pass"
            count += 1
    return "\n".join(lines), count


def compile_program(code: str, limits: policy.PolicyLimits | None = None) -> CodeType:
    """Check (when limits are given), instrument and compile a program.

    PolicyError or LimitExceeded from the courtesy check; SyntaxError from the parser.
    """
    tree = policy.check(code, limits) if limits is not None else ast.parse(code, PROGRAM_FILENAME)
    return compile(instrument(tree), PROGRAM_FILENAME, "exec", dont_inherit=True)


class _Courtesy:
    """What a program may call that has no meaning here, turned into notes instead of hangs."""

    def __init__(self, messages: list[NoteMessage]) -> None:
        self.messages = messages

    def note_once(self, key: str, text: str, **params: str | int | None) -> None:
        if all(said.text != text for said in self.messages):
            self.messages.append(NoteMessage(key=key, params=params, text=text))

    def debugger(self, *args: object, **kwargs: object) -> None:
        self.note_once(
            "debuggerSkipped",
            "The program asked for the debugger (pdb.set_trace() / breakpoint()); the explorer "
            "has no console, so it went on. Step through the graph with the player instead.",
        )

    def exit(self, code: object = None) -> None:
        shown = "" if code is None else repr(code)
        self.note_once(
            "programExit", f"The program called exit({shown}); it ended there.", code=shown
        )
        raise ProgramExit()

    @staticmethod
    def input(prompt: object = "") -> str:
        raise RuntimeError("input() has no keyboard here: assign the value in the program instead")

    @staticmethod
    def display(*values: object) -> None:
        """Jupyter's display(): print each value."""
        for value in values:
            print(value)

    def builtins(self) -> dict[str, Any]:
        names = dict(vars(builtins))
        names.update(input=self.input, exit=self.exit, quit=self.exit, display=self.display)
        return names


@contextlib.contextmanager
def _patched(obj: Any, name: str, value: Any) -> Iterator[None]:
    had = hasattr(obj, name)
    old = getattr(obj, name, None)
    setattr(obj, name, value)
    try:
        yield
    finally:
        if had:
            setattr(obj, name, old)
        else:
            delattr(obj, name)


def _pyplot(code: str) -> Any:
    """matplotlib.pyplot on the Agg backend when the program may use it (None otherwise)."""
    if "matplotlib" not in code and "matplotlib.pyplot" not in sys.modules:
        return None
    try:
        import matplotlib

        if "matplotlib.pyplot" not in sys.modules:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:  # not installed, or no usable backend: the program will say so itself
        return None
    return plt


def _capture_figures(plt: Any, graph: Graph) -> None:
    """Every open matplotlib figure as a PNG under the program's output; then close them."""
    if plt is None:
        return
    for number in plt.get_fignums()[:MAX_FIGURES]:
        figure = plt.figure(number)
        buffer = io.BytesIO()
        try:
            figure.savefig(buffer, format="png", dpi=FIGURE_DPI)
        except Exception as exc:  # a broken figure must not lose the recording
            add_note(
                graph,
                "figureFailed",
                f"Figure {number} could not be drawn: {exc}",
                number=number,
                message=str(exc),
            )
            continue
        width, height = figure.get_size_inches() * FIGURE_DPI
        graph.figures.append(
            Figure(
                number=number,
                png=base64.b64encode(buffer.getvalue()).decode(),
                width=int(width),
                height=int(height),
            )
        )
    plt.close("all")


@contextlib.contextmanager
def _wall_clock(limits: RunLimits) -> Iterator[None]:
    """LimitExceeded('wall_time') when an in-process run passes its wall-clock limit."""
    seconds = limits.wall_seconds
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise LimitExceeded(
            "wall_time",
            f"the program ran longer than {seconds:g} s "
            f"(set {limits.setting_hint} to change the limit)",
        )

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def trace_program(
    code: str,
    device: str = "cpu",
    seed: int = 0,
    options: TraceOptions | None = None,
    checks: policy.PolicyLimits | None = None,
    limits: RunLimits | None = None,
) -> Graph:
    """Run a program on real tensors and return its recording.

    With `checks`, the courtesy policy looks at the program first (PolicyError, LimitExceeded);
    a SyntaxError or an exception of the program is recorded in the Graph.
    """
    code, magics = strip_notebook_magics(code)
    try:
        program = compile_program(code, checks)
    except SyntaxError as exc:
        return record_error(exc)
    stdout = BoundedWriter()
    notes: list[NoteMessage] = []
    courtesy = _Courtesy(notes)
    if magics:
        courtesy.note_once(
            "magicsSkipped",
            f"{magics} notebook line(s) starting with % or ! (such as %matplotlib inline) "
            "were skipped: they are IPython commands, not Python.",
            n=magics,
        )
    plt = _pyplot(code)
    namespace: dict[str, Any] = {
        "__name__": "__main__",
        "__file__": PROGRAM_FILENAME,
        "__builtins__": courtesy.builtins(),
    }

    def execute(recorder: Recorder) -> None:
        namespace[BIND_FUNCTION] = recorder.bind
        try:
            exec(program, namespace)  # noqa: S102 - the one place user code runs
        except SystemExit as exc:
            courtesy.exit(exc.code)

    with contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.redirect_stdout(stdout))
        stack.enter_context(contextlib.redirect_stderr(stdout))
        stack.enter_context(_patched(sys, "breakpointhook", courtesy.debugger))
        import pdb

        stack.enter_context(_patched(pdb, "set_trace", courtesy.debugger))
        if plt is not None:
            stack.enter_context(_patched(plt, "show", lambda *a, **k: None))
        stack.enter_context(_wall_clock(limits or RunLimits()))
        graph = record_program(execute, device, seed, options, source=code)
    namespace.clear()  # the program's variables go first, then the nodes the recording held
    release_held_graphs()
    graph.stdout = stdout.text()
    for note in notes:
        add_note(graph, note.key, note.text, **note.params)
    _capture_figures(plt, graph)
    return graph
