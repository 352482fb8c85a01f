"""The Recorder: builds a Graph from the program's torch calls, variable bindings and backward
passes, with the parts that keep each kind of state."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from app.chain_rule import attach_rules
from app.errors import LimitExceeded
from app.recorder.autograd_facts import (
    autograd_role,
    call_name_of,
    grad_fn_name,
    iter_tensors,
    number_reprs,
    op_name_of,
)
from app.recorder.failures import FailedCall, FailedPass
from app.recorder.graph_builder import GraphBuilder
from app.recorder.modules import ModuleStack
from app.recorder.naming import Names
from app.recorder.notes import Notes
from app.recorder.options import TraceOptions
from app.recorder.passes import PassRecorder
from app.recorder.pausing import LoopPauses
from app.recorder.process import hold_nodes
from app.recorder.records import forward_step_record
from app.recorder.series import TrainingSeries
from app.recorder.source import ProgramSource, call_site
from app.schemas import Graph, OpNode, TensorNode, Truncation


class Recorder:
    """Builds a Graph from forward calls, variable bindings and backward passes."""

    def __init__(self, device: str, options: TraceOptions, source: str = "") -> None:
        self.options = options
        self.graph = Graph(device=device)
        self.recording = True
        self.busy = False  # the recorder's own code is running: bindings are not the program's
        self.in_pass = False  # torch's own work (a backward pass) is running
        self.passes_total = 0
        self.stopped_for_good = False  # a limit ended the recording: it never resumes
        self.ever_stopped = False
        self.when_stopped: list[Callable[[], None]] = []  # run when recording stops
        self.when_resumed: list[Callable[[], None]] = []  # run when it starts again after a loop
        self.mode: Any = None  # the RecordingMode, which steps aside once recording stops
        self.failed_call: FailedCall | None = None
        self.failed_pass: FailedPass | None = None
        self.names = Names()
        self.source = ProgramSource(source.splitlines())
        self.notes = Notes(self.graph)
        self.builder = GraphBuilder(self.graph, options, self.names, self.source)
        self.summaries = self.builder.summaries
        self.modules = ModuleStack(self.graph, self.names)
        self.series = TrainingSeries(options.max_series_points)
        self.pauses = LoopPauses(self)
        self.passes = PassRecorder(self)

    # ----- forward ---------------------------------------------------------------------

    def on_call(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        """Record a Python-level torch call when it created autograd nodes."""
        builder = self.builder
        outputs = [out] if type(out) is torch.Tensor else list(iter_tensors(out))
        new_fns = [
            o.grad_fn for o in outputs if o.grad_fn is not None and not builder.knows(o.grad_fn)
        ]
        if not new_fns:
            self.source.remember_constants(outputs, self.options.max_nodes)
            return
        line, caller = call_site(2)  # 2: this method, the mode's __torch_function__
        module = self.modules.current()
        inputs = list(iter_tensors((args, kwargs)))
        for t in inputs:  # tensors made by calls the recorder cannot see (autograd.Function.apply)
            if t.grad_fn is not None and not builder.knows(t.grad_fn):
                self.record_unseen(t, line)
        call_name = call_name_of(func)
        group = builder.discover(new_fns, line, module, len(self.graph.forward))
        head = builder.op_of(new_fns[0])
        head_node = builder.node(head)
        head_node.label = call_name
        if isinstance(head_node, OpNode):  # for the chain rule's "b = w + 1"
            head_node.constants = number_reprs(args)
        input_ids = [builder.tensor_node(t) for t in inputs]
        for t, tid in zip(inputs, input_ids, strict=True):
            if not t.requires_grad:
                builder.add_edge(tid, head)
        made = [o for o in outputs if o.grad_fn is not None]
        texts = self.source.output_expressions(caller, len(made))
        output_ids = [
            builder.tensor_node(o, call_name, text) for o, text in zip(made, texts, strict=True)
        ]
        builder.reconnect_outputs(output_ids)
        self.add_step(head, group, call_name, input_ids, output_ids, line, module)

    def record_unseen(self, t: torch.Tensor, line: int | None) -> str:
        """Record a tensor whose autograd node was created out of sight, as its own step."""
        builder = self.builder
        fn = t.grad_fn
        module = self.modules.current()
        group = builder.discover([fn], line, module, len(self.graph.forward))
        head = builder.op_of(fn)
        output_id = builder.tensor_node(t)
        builder.reconnect_outputs([output_id])
        inputs = builder.tensor_inputs_of(head)
        name = op_name_of(grad_fn_name(fn))
        self.add_step(head, group, name, inputs, [output_id], line, module)
        return output_id

    def add_step(
        self,
        head: str,
        nodes: list[str],
        call: str,
        inputs: list[str],
        outputs: list[str],
        line: int | None,
        module: str | None,
    ) -> None:
        """Append the forward step of one call, after the passes that ran so far."""
        self.graph.forward.append(
            forward_step_record(head, nodes, call, inputs, outputs, line, module, self.passes_total)
        )

    def remember_failure(
        self, exc: BaseException, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        """Keep the torch call that raised, to draw it if its error ends the program."""
        self.failed_call = FailedCall.of(exc, func, args, kwargs, self.modules.current())

    def add_failed_call(self, exc: BaseException) -> str | None:
        """A ghost op node, with its inputs, for the torch call whose error ended the program."""
        failed = self.failed_call
        if failed is None or failed.error is not exc:
            return None
        self.failed_call = None
        for t in failed.inputs:
            if t.grad_fn is not None and not self.builder.knows(t.grad_fn):
                self.record_unseen(t, failed.line)
        node_id, input_ids = failed.add_ghost(self.builder)
        self.add_step(node_id, [node_id], failed.name, input_ids, [], failed.line, failed.module)
        return node_id

    def run_pass(
        self,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        added: bool = False,
        flush: bool = True,
    ) -> Any:
        """Run a backward()/autograd.grad() call under node hooks and record it as a pass
        (see PassRecorder.run)."""
        return self.passes.run(func, args, kwargs, added, flush)

    @contextlib.contextmanager
    def quiet(self) -> Iterator[None]:
        """Run torch's own work (gradcheck's passes) without recording it."""
        previous, self.in_pass = self.in_pass, True
        try:
            yield
        finally:
            self.in_pass = previous

    # ----- variable bindings -----------------------------------------------------------

    def bind(self, line: int, module_scope: bool, *pairs: tuple[str, Any]) -> None:
        """Called by instrumented code after each assignment: names tensors and modules."""
        if self.busy:
            return
        if not self.recording and not self.in_pass:
            self.pauses.resume_where_due()
        if not self.recording and not self.in_pass and self.mode is not None:
            self.mode.step_aside()
        self.busy = True
        try:
            for name, value in pairs:
                self._bind_one(name, value, line, module_scope)
        except LimitExceeded as exc:
            if exc.limit != "nodes":
                raise
            self.hit_node_limit(line)
        except RuntimeError:  # a stale view: torch refuses to describe it; its name can wait
            pass
        finally:
            self.busy = False

    def _bind_one(self, name: str, value: Any, line: int, module_scope: bool) -> None:
        if isinstance(value, nn.Module):
            if module_scope:  # names inside functions and __init__ are temporaries
                self.names.name_module(name, value)
            return
        if self.names.is_named_parameter(value):
            return  # `for p in model.parameters()` must not rename model.0.weight to p
        if isinstance(value, (list, tuple)) and len(value) <= 64:
            for index, item in enumerate(value):
                if isinstance(item, torch.Tensor):
                    self._bind_one(f"{name}[{index}]", item, line, module_scope)
            return
        if not isinstance(value, torch.Tensor):
            return
        if not self.recording:
            if module_scope and not self.stopped_for_good:
                self.names.keep_paused(name, line, value)
            return
        if not self.names.bind(name, line, module_scope, value):
            return
        if value.grad_fn is not None and not self.builder.knows(value.grad_fn):
            self.record_unseen(value, line)
        node_id = self.builder.holds(value)
        if node_id is not None:
            node = self.builder.node(node_id)
            if isinstance(node, TensorNode):
                node.name, node.label, node.line = name, name, line

    # ----- stopping --------------------------------------------------------------------

    def stop_recording(self) -> None:
        """Let the program run on unrecorded (it may resume after the loop that stopped it)."""
        if not self.recording:
            return
        self.recording = False
        self.ever_stopped = True
        self.modules.clear()
        for stop in self.when_stopped:
            stop()

    def hit_node_limit(self, line: int | None = None) -> None:
        """The graph is full: keep what was recorded, run the rest unrecorded, and say so."""
        self.stopped_for_good = True
        self.pauses.cancel()
        self.stop_recording()
        limit = self.options.max_nodes
        where = f" at line {line}" if line is not None else ""
        text = (
            f"The graph reached its limit of {limit} nodes{where}; the rest of the program ran "
            "without being recorded, and the graph shows what was recorded before."
        )
        if not self.notes.first_time("nodeLimit"):
            return
        if line is None:
            self.notes.note("nodeLimitNoLine", text, limit=limit)
        else:
            self.notes.note("nodeLimit", text, limit=limit, line=line)

    # ----- finishing -------------------------------------------------------------------

    def finish(self) -> Graph:
        """Fill the fields known only at the end (.grad, retains_grad) and return the Graph."""
        if self.ever_stopped and not self.stopped_for_good:
            try:
                self.pauses.close_paused_loop()
                self.pauses.add_final_leaves()
            except LimitExceeded as exc:
                if exc.limit != "nodes":
                    raise
                self.hit_node_limit()
        for node, t in self.builder.latest_tensors():
            role = autograd_role(t)
            if role is None:  # a stale view: its recorded state stands
                continue
            is_leaf = role[1]
            if not is_leaf:
                node.retains_grad = bool(t.retains_grad)
            if (is_leaf or t.retains_grad) and t.grad is not None:
                node.grad = self.builder.summary(t.grad)
        self.summaries.flush()
        self.graph.series = self.series.drawn()
        if self.passes_total > len(self.graph.backward):
            self.graph.truncated = Truncation(
                passes_recorded=len(self.graph.backward), passes_total=self.passes_total
            )
        distinct_labels(self.graph)
        if self.options.values:  # a rule reads its step's values
            attach_rules(self.graph)
        return self.graph

    def release(self) -> None:
        """Drop the recorder's hold on the program's tensors, and hand its autograd nodes to
        release_held_graphs(), which frees them once the program's own references are gone."""
        self.passes.forget()
        self.pauses.cancel()
        self.names.forget_tensors()
        self.source.forget_constants()
        self.series.forget_sources()
        hold_nodes(self.builder.release())
        # what points back at the recorder: once dropped, reference counting frees the
        # recording as soon as its caller lets go, not a later collection that walks it all
        self.mode = None
        self.when_stopped.clear()
        self.when_resumed.clear()


def distinct_labels(graph: Graph) -> None:
    """Number the unnamed tensors that share a label among the calls made between two
    backward passes, which are drawn together ('x * w', 'x * w #2'; 'mul_out', 'mul_out#2'),
    and give every AccumulateGrad its leaf's final label. Each iteration of a loop starts
    the count again, so every pass reads (and is laid out) alike."""
    segment_of: dict[str, int] = {}
    for step in graph.forward:
        after = step.after_pass
        for tensor_id in step.outputs:
            if tensor_id not in segment_of:
                segment_of[tensor_id] = after
        for tensor_id in step.inputs:
            if tensor_id not in segment_of:
                segment_of[tensor_id] = after
    seen: dict[tuple[int, str], int] = {}
    labels: dict[str, str] = {}
    accumulators: list[OpNode] = []
    for node in graph.nodes:
        if isinstance(node, OpNode):
            if node.variable is not None:
                accumulators.append(node)
        elif isinstance(node, TensorNode):
            if node.name is None:
                key = (segment_of.get(node.id, -1), node.label)
                count = seen[key] = seen.get(key, 0) + 1
                if count > 1:
                    node.label = f"{node.label}{' #' if ' ' in node.label else '#'}{count}"
            labels[node.id] = node.label
    for node in accumulators:
        label = f"AccumulateGrad({labels[node.variable]})"  # type: ignore[index]
        if node.label != label:  # mostly the label it was made with: no model __setattr__
            node.label = label
