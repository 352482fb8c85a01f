"""Backward passes: run backward()/autograd.grad() under node hooks, and record the order the
engine ran the nodes in with the gradients each one saw."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from app.errors import LimitExceeded
from app.recorder.autograd_facts import (
    iter_tensors,
    node_kind,
    signature_of,
)
from app.recorder.engine_order import engine_order
from app.recorder.failures import FailedPass
from app.recorder.process import PausedCollections
from app.recorder.records import backward_step_record
from app.recorder.source import user_line
from app.schemas import BackwardPass, OpNode, TensorData

if TYPE_CHECKING:
    from app.recorder.recorder import Recorder


_UNSEEN: Any = object()  # no summary yet (None is the summary of a gradient that is None)


def _detached(grads: tuple[Any, ...]) -> tuple[Any, ...]:
    """The gradients a hook saw, cut from any graph (create_graph passes build one)."""
    if not any(g is not None and g.requires_grad for g in grads):
        return grads
    return tuple(g.detach() if g is not None else None for g in grads)


@dataclass
class PassRun:
    """Raw gradients seen by node hooks during one pass, summarized afterwards: per node run,
    in the order the engine ran them, (op node, gradients in, gradients out, its leaf's .grad
    before the pass added to it); and the AccumulateGrad nodes hooked."""

    ran: list[tuple[str, tuple[Any, ...], tuple[Any, ...], TensorData | None]] = field(
        default_factory=list
    )
    # (op node, its leaf's tensor node) of each AccumulateGrad hooked, in the order of the nodes
    accumulators: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class PassRecorder:
    """Records each backward pass of a recording (or counts it, while the recording pauses)."""

    def __init__(self, recorder: Recorder) -> None:
        # a proxy: a part that owned its recorder would hold it in a reference cycle
        self.recorder: Recorder = weakref.proxy(recorder)
        self._last_reachable: tuple[tuple[int, ...], list[Any]] | None = None

    def run(
        self,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        added: bool = False,
        flush: bool = True,
    ) -> Any:
        """Run a backward()/autograd.grad() call under node hooks and record it as a pass;
        flush=False leaves its statistics to a later flush (no program code runs before it)."""
        rec = self.recorder
        if not rec.recording:
            rec.pauses.resume_where_due()  # a last iteration that bound no variable first
        if (
            not rec.recording
            and func is not torch.autograd.grad
            and args
            and isinstance(args[0], torch.Tensor)
        ):  # the run goes on unrecorded: count the pass and plot its loss, nothing more
            rec.passes_total += 1
            result = func(*args, **kwargs)
            self._skipped([args[0]])
            return result
        kind = "grad" if func is torch.autograd.grad else "backward"
        bound = signature_of(func).bind(*args, **kwargs)
        bound.apply_defaults()
        params = bound.arguments
        roots = list(iter_tensors(params.get("outputs", params.get("tensors", params.get("self")))))
        wrt = list(iter_tensors(params.get("inputs"))) if params.get("inputs") is not None else []
        create_graph = bool(params.get("create_graph"))
        line = user_line()
        rec.passes_total += 1
        if rec.recording and len(rec.graph.backward) >= rec.pauses.pass_budget:
            rec.pauses.pause_in_loop(line)
        builder = rec.builder
        if rec.recording:
            try:
                for t in roots:
                    if t.grad_fn is not None and not builder.knows(t.grad_fn):
                        rec.record_unseen(t, line)
                root_ids = [builder.tensor_node(t) for t in roots]
                wrt_ids = [builder.tensor_node(t) for t in wrt]
                fns = self.reachable([t.grad_fn for t in roots])
                for fn in builder.unknown(fns):  # discover skips those an earlier one found
                    builder.discover([fn], line, None, None)
            except LimitExceeded as exc:
                if exc.limit != "nodes":
                    raise
                rec.hit_node_limit(line)
        if not rec.recording:
            rec.summaries.flush()
            result = func(*args, **kwargs)
            self._skipped(roots)
            return result
        run = PassRun()
        handles = self._hook(fns, run, create_graph)
        rec.in_pass = True
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            rec.passes_total -= 1  # the program's error, not a pass left out of the recording
            rec.failed_pass = FailedPass(exc, len(rec.graph.backward), root_ids)
            failed = len(rec.graph.backward) + 1
            rec.notes.note(
                "failedPass",
                f"Backward pass {failed} raised an error, so it was not recorded.",
                n=failed,
            )
            raise
        finally:
            rec.in_pass = False
            for handle in handles:
                handle.remove()
        index = len(rec.graph.backward)
        record = BackwardPass(
            root=root_ids,
            steps=[],
            kind=kind,
            line=line,
            added=added,
            create_graph=create_graph,
            inputs=wrt_ids,
        )
        with PausedCollections():  # only the recorder's own code runs from here on
            rec.graph.backward.append(record)
            self._fill_pass(record, run)
            if kind == "grad":
                grads = result if isinstance(result, tuple) else (result,)
                for tid, g in zip(wrt_ids, grads, strict=False):
                    if g is not None:
                        record.results[tid] = builder.summary(g)
                if create_graph:
                    self._record_gradient_graph([g for g in grads if g is not None], index, line)
            elif create_graph:
                leaves = [
                    builder.tensor(builder.leaf_of_op(builder.op_of(f)) or "")
                    for f in fns
                    if node_kind(f).accumulates
                ]
                self._record_gradient_graph(
                    [leaf.grad for leaf in leaves if leaf.grad is not None], index, line
                )
            if flush:  # .grad grows in place, and the program may change the rest
                rec.summaries.flush()
            self._record_series(roots)
        return result

    def record_unrun(self, roots: list[torch.Tensor], inputs: list[torch.Tensor]) -> None:
        """The pass torch.autograd.grad(roots, inputs) would run, recorded without running it
        (a recording of the structure alone, on the CPU): the engine's order, worked out, and
        the shapes of the gradients that would flow."""
        rec = self.recorder
        builder = rec.builder
        rec.passes_total += 1
        root_ids = [builder.tensor_node(t) for t in roots]
        wrt_ids = [builder.tensor_node(t) for t in inputs]
        root_fns = [t.grad_fn for t in roots]
        fns = self.reachable(root_fns)
        for fn in builder.unknown(fns):  # discover skips those an earlier one found
            builder.discover([fn], None, None, None)
        wanted = {id(t) for t in inputs}
        accumulators = {
            id(fn): builder.op_of(fn)
            for fn in fns
            if node_kind(fn).accumulates and id(fn.variable) in wanted
        }
        order = engine_order(root_fns, fns, set(accumulators))
        record = BackwardPass(root=root_ids, steps=[], kind="grad", inputs=wrt_ids)
        record.steps = [
            backward_step_record(op_id, [], [], None, None) for op_id in builder.ops_of(order)
        ]
        reached = {builder.node(op_id).variable for op_id in accumulators.values()}
        for tid in wrt_ids:
            if tid in reached:
                record.results[tid] = builder.node(tid).value  # type: ignore[union-attr]
        ran = {id(fn) for fn in order}
        for tensor_id, fn_id, _ in builder.output_tensors():
            if fn_id in ran:
                record.tensor_grads[tensor_id] = builder.node(tensor_id).value  # type: ignore[union-attr]
        rec.graph.backward.append(record)

    def reachable(self, roots: Iterable[Any]) -> list[Any]:
        """Every autograd node reachable from roots, each once. A node's next_functions never
        change, so the answer for the same roots is kept (the builder keeps their ids)."""
        roots = [fn for fn in roots if fn is not None]
        key = tuple(id(fn) for fn in roots)
        if self._last_reachable is not None and self._last_reachable[0] == key:
            return self._last_reachable[1]
        seen: set[int] = set()
        order: list[Any] = []
        stack = list(roots)
        while stack:
            fn = stack.pop()
            if id(fn) in seen:
                continue
            seen.add(id(fn))
            order.append(fn)
            for producer, _ in fn.next_functions:
                if producer is not None and id(producer) not in seen:
                    stack.append(producer)
        self.recorder.builder.keep(roots)  # keeps the ids of the key from being reused
        self._last_reachable = (key, order)
        return order

    def forget(self) -> None:
        """Drop the autograd nodes of the last walk (the recording is over)."""
        self._last_reachable = None

    def _hook(self, fns: list[Any], run: PassRun, create_graph: bool) -> list[Any]:
        """One hook per node: a pre-hook on AccumulateGrad (which sends nothing on, and whose
        leaf's .grad is read before the gradient is added), a post-hook on every other node,
        which sees what came in and what went out. The engine runs one node at a time from
        pre-hook to post-hook, so either kind gives the order the nodes ran in. Only a
        create_graph pass makes gradients that are part of a graph, to be cut from it."""
        builder = self.recorder.builder
        summary = builder.summary
        values = self.recorder.options.values
        copy = (lambda t: t.detach().clone()) if values else (lambda t: t)
        ran, lock = run.ran, run.lock
        record = ran.append  # one append per node run: atomic, so no lock is needed
        handles = []
        add_handle, accumulators = handles.append, run.accumulators
        leaf_of_op = builder.leaves_of_ops()
        for fn, op_id in zip(fns, builder.ops_of(fns), strict=True):
            variable = leaf_of_op.get(op_id)
            if variable is not None:
                accumulators.append((op_id, variable))
                leaf = builder.tensor(variable)

                def pre(
                    grad_outputs: tuple[Any, ...], op_id: str = op_id, leaf: Any = leaf
                ) -> None:
                    with lock:
                        before = leaf.grad  # a copy: .grad grows in place, its statistics wait
                        grad_before = None if before is None else summary(copy(before))
                        if create_graph:
                            grad_outputs = _detached(grad_outputs)
                        record((op_id, (), grad_outputs, grad_before))

                add_handle(fn.register_prehook(pre))
            elif create_graph:

                def post_detached(
                    grad_inputs: tuple[Any, ...], grad_outputs: tuple[Any, ...], op_id: str = op_id
                ) -> None:
                    record((op_id, _detached(grad_inputs), _detached(grad_outputs), None))

                add_handle(fn.register_hook(post_detached))
            else:

                def post(
                    grad_inputs: tuple[Any, ...], grad_outputs: tuple[Any, ...], op_id: str = op_id
                ) -> None:
                    record((op_id, grad_inputs, grad_outputs, None))

                add_handle(fn.register_hook(post))
        return handles

    def _fill_pass(self, record: BackwardPass, run: PassRun) -> None:
        """The steps of a pass from what its hooks saw, the .grad its leaves ended with, and
        the gradient each output tensor took."""
        # the engine hands the same tensor to a node's hook and its producer's: one summary
        # each (run holds every tensor seen, so no id is reused while this runs)
        builder = self.recorder.builder
        add = builder.summary
        summary_of: dict[int, TensorData | None] = {id(None): None}
        known = summary_of.get
        steps = record.steps.append
        outputs_of: dict[str, tuple[Any, ...]] = {}

        def summaries(grads: tuple[Any, ...]) -> list[TensorData | None]:
            found: list[TensorData | None] = []
            for g in grads:
                data = known(id(g), _UNSEEN)
                if data is _UNSEEN:
                    data = summary_of[id(g)] = add(g, False)
                found.append(data)
            return found

        for op_id, grad_inputs, grad_outputs, grad_before in run.ran:
            outputs_of[op_id] = grad_outputs
            steps(
                backward_step_record(
                    op_id, summaries(grad_inputs), summaries(grad_outputs), grad_before, None
                )
            )
        for op_id, variable in run.accumulators:
            if op_id in outputs_of:
                grad = builder.tensor(variable).grad
                if grad is not None:
                    record.grads[variable] = add(grad)
        op_of_id = builder.op_of_id
        for tensor_id, fn_id, output_nr in builder.output_tensors():
            grads = outputs_of.get(op_of_id(fn_id) or "")
            if grads is not None and output_nr < len(grads):
                data = summary_of[id(grads[output_nr])]  # every step's gradients have one
                if data is not None:
                    record.tensor_grads[tensor_id] = data

    def _skipped(self, roots: list[torch.Tensor]) -> None:
        """A pass that ran unrecorded: plotted, and kept as the paused loop's latest."""
        self._record_series(roots)
        self.recorder.pauses.count_skipped(roots)

    def _record_gradient_graph(
        self, grads: list[torch.Tensor], index: int, line: int | None
    ) -> None:
        """The graph a create_graph pass built, as made by that pass (within the node limit)."""
        builder = self.recorder.builder
        try:
            fns = [g.grad_fn for g in grads if g.grad_fn is not None]
            builder.discover(fns, line, None, None, created_by_pass=index)
            for fn in fns:
                node = builder.node(builder.op_of(fn))
                if isinstance(node, OpNode):
                    node.created_by_pass = index
            ids = [builder.tensor_node(g, "grad") for g in grads if g.grad_fn is not None]
            builder.reconnect_outputs(ids)
        except LimitExceeded as exc:
            if exc.limit != "nodes":
                raise
            self.recorder.hit_node_limit(line)

    def _record_series(self, roots: list[torch.Tensor]) -> None:
        rec = self.recorder
        if not rec.options.values:
            return  # the chart plots values
        with rec.quiet():
            sources = rec.series.sources(rec.recording, rec.builder.tensors())
            rec.series.record(roots, rec.passes_total, sources)
