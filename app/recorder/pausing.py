"""Long loops: after max_passes recorded passes the program runs on unrecorded (counted and
charted), and recording resumes once it leaves the loop, or for the loop's last iteration."""

from __future__ import annotations

import ast
import sys
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from app.errors import LimitExceeded
from app.recorder.autograd_facts import autograd_role
from app.recorder.options import most_passes
from app.recorder.source import range_end, top_level_frame, top_level_line

if TYPE_CHECKING:
    from app.recorder.recorder import Recorder


@dataclass
class PausedLoop:
    """A loop whose passes beyond the recorded ones run unrecorded: counted and plotted."""

    span: tuple[int, int]  # first and last line of the program's statement that runs the loop
    first: int  # number of the first pass not recorded (1-based)
    line: int | None  # the line of that pass
    skipped: int = 0
    last_roots: list[torch.Tensor] = field(default_factory=list)
    # (loop variable, its last value) of each enclosing `for ... in range(...)`: all at their
    # last value, the loop's last iteration is recorded in full
    final: list[tuple[str, int]] | None = None


class LoopPauses:
    """When a recording pauses in a loop, and what it records when it resumes."""

    def __init__(self, recorder: Recorder) -> None:
        # a proxy: a part that owned its recorder would hold it in a reference cycle
        self.recorder: Recorder = weakref.proxy(recorder)
        self.paused: PausedLoop | None = None  # the loop whose later passes run unrecorded
        self.pass_budget = recorder.options.max_passes  # passes in full before the next pause

    def cancel(self) -> None:
        """No loop is paused any more (a limit ended the recording, or it is over)."""
        self.paused = None

    def resume_where_due(self) -> None:
        """Resume recording when the program left the paused loop or reached its last
        iteration."""
        if self.left_paused_loop():
            self.resume()
        elif self.at_final_iteration():
            self.resume_for_last_iteration()

    def pause_in_loop(self, line: int | None) -> None:
        """Stop recording passes in full, to resume once the program leaves the statement that
        runs this loop (a hooks demo, a second model after a training loop); once another round
        could pass most_passes, the pause lasts to the program's end."""
        rec = self.recorder
        span = rec.source.top_statement_span(top_level_line())
        rec.stop_recording()
        if span is not None and not rec.stopped_for_good:
            max_passes = rec.options.max_passes
            last_round = len(rec.graph.backward) + max_passes + 1 > most_passes(max_passes)
            if last_round:
                span = (span[0], sys.maxsize)
            self.paused = PausedLoop(span=span, first=rec.passes_total, line=line)
            self.paused.final = None if last_round else self._final_iteration(line)

    def count_skipped(self, roots: list[torch.Tensor]) -> None:
        """A pass ran unrecorded: counted, and its roots kept as the paused loop's latest."""
        if self.paused is not None:
            self.paused.skipped += 1
            self.paused.last_roots = [t for t in roots if t.grad_fn is not None]

    def _final_iteration(self, line: int | None) -> list[tuple[str, int]] | None:
        """(variable, last value) of every top-level `for v in range(...)` around line, when
        the ranges can be read without calling anything; None when a loop is of another kind."""
        frame = top_level_frame()
        node: ast.AST | None = self.recorder.source.top_statement(top_level_line())
        if frame is None or node is None or line is None:
            return None
        final: list[tuple[str, int]] = []
        while node is not None:
            if isinstance(node, (ast.While, ast.AsyncFor)):
                return None
            if isinstance(node, ast.For):
                last = range_end(node, frame.f_globals)
                if last is None:
                    return None
                final.append(last)
            inner = [
                child
                for child in ast.iter_child_nodes(node)
                if isinstance(child, ast.stmt)
                and child.lineno <= line <= (child.end_lineno or child.lineno)
            ]
            node = inner[0] if inner else None
        return final or None

    def at_final_iteration(self) -> bool:
        """Whether every loop around the paused pass is in its last iteration."""
        paused = self.paused
        if paused is None or not paused.final:
            return False
        frame = top_level_frame()
        if frame is None:
            return False
        values = frame.f_globals
        return all(
            type(values.get(var)) is int and values[var] == last for var, last in paused.final
        )

    def resume_for_last_iteration(self) -> None:
        """Record the paused loop's last iteration in full, and what follows it."""
        if self.paused is not None:
            self.paused.last_roots = []
            self.paused.final = None
        self.resume(last_in_full=True)

    def left_paused_loop(self) -> bool:
        """Whether the program has left the statement whose loop paused the recording."""
        paused = self.paused
        if paused is None:
            return False
        line = top_level_line()
        return line is not None and not paused.span[0] <= line <= paused.span[1]

    def resume(self, last_in_full: bool = False) -> None:
        """Record again in full after a paused loop: its summary first, then what follows."""
        rec = self.recorder
        if rec.mode is not None:
            rec.mode.step_back()
        for start in rec.when_resumed:
            start()
        rec.recording = True
        rec.series.forget_sources()
        self.pass_budget = len(rec.graph.backward) + rec.options.max_passes
        self.close_paused_loop(last_in_full)

    def close_paused_loop(self, last_in_full: bool = False) -> None:
        """The graph of a paused loop's last pass, and a note of the passes not recorded."""
        rec = self.recorder
        paused, self.paused = self.paused, None
        rec.names.restore_paused()
        if paused is None or not paused.skipped:
            return
        last = paused.first + paused.skipped - 1
        try:
            for t in paused.last_roots:
                if t.grad_fn is not None and not rec.builder.knows(t.grad_fn):
                    rec.record_unseen(t, paused.line)
        except LimitExceeded:
            rec.hit_node_limit(paused.line)
        where = f" (line {paused.line})" if paused.line is not None else ""
        if last_in_full:
            rec.notes.note(
                "passesSummarisedLastFull",
                f"Backward passes {paused.first}–{last}{where} ran without being recorded in "
                "full: the chart keeps every one, and the loop's last pass is recorded in full.",
                first=paused.first,
                last=last,
                line=paused.line,
            )
            return
        rec.notes.note(
            "passesSummarised",
            f"Backward passes {paused.first}–{last}{where} ran without being recorded in full: "
            "the chart keeps every one, the graph of the last one is shown, and each leaf "
            "shows its final .grad.",
            first=paused.first,
            last=last,
            line=paused.line,
        )

    def add_final_leaves(self) -> None:
        """Leaves the program bound while recording was paused: their final .grad, as torch
        leaves it (a parameter rebound in every iteration of a long loop)."""
        builder = self.recorder.builder
        for t in self.recorder.names.latest_top_tensors():
            if builder.holds(t) is not None:
                continue
            role = autograd_role(t)
            if role is None or not role[1] or not t.requires_grad or t.grad is None:
                continue
            builder.tensor_node(t)
