"""Record a real autograd run: forward calls, tensors, and every backward pass the engine ran."""

from __future__ import annotations

import ast
import contextlib
import functools
import gc
import inspect
import os
import re
import sys
import threading
import traceback
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from app.chain_rule import attach_rules
from app.device_mode import device_context
from app.errors import DeviceUnavailable, LimitExceeded
from app.module_text import describe_module
from app.records import build, maker
from app.schemas import (
    BackwardPass,
    BackwardStep,
    Edge,
    ErrorInfo,
    ForwardStep,
    Graph,
    NoteMessage,
    OpNode,
    SavedTensor,
    Series,
    TensorData,
    TensorNode,
    Truncation,
)
from app.tensor_summary import SummaryBatch, dtype_name, scalar_of

# records made by the thousand: every field by keyword, nothing checked
new_edge = maker(Edge)
new_tensor_node = maker(TensorNode)
new_op_node = maker(OpNode)
new_saved_tensor = maker(SavedTensor)
new_forward_step = maker(ForwardStep)
new_backward_step = maker(BackwardStep)

ACCUMULATE_GRAD = "AccumulateGrad"
PASS_FUNCTIONS = {torch.Tensor.backward, torch.autograd.grad, torch.autograd.backward}
_SEQUENCE_NR_MAX = 2**63
_BACKWARD_SUFFIX = re.compile(r"Backward\d*$")
_TRACE_LOCK = threading.RLock()  # module hooks and the default device are process-wide
PROGRAM_FILENAME = "<program>"  # the file name a traced program is compiled under


PASS_ROUNDS = 8  # rounds of max_passes passes recorded in full over one program


def most_passes(max_passes: int) -> int:
    """The most backward passes one recording keeps in full; later ones are counted and charted."""
    return max(1, max_passes) * PASS_ROUNDS


@dataclass(frozen=True)
class TraceOptions:
    """Bounds of one recording."""

    inline_limit: int = 64
    max_nodes: int = 20_000
    max_passes: int = 8
    max_series_points: int = 10_000
    max_saved_repr: int = 120


def resolve_device(device: str) -> torch.device:
    """torch.device for cpu | cuda | auto; DeviceUnavailable when CUDA is absent but asked for."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailable("CUDA was requested but no CUDA device is available here")
        return torch.device("cuda")
    if device == "cpu":
        return torch.device("cpu")
    raise DeviceUnavailable(f"unknown device {device!r}; use cpu, cuda or auto")


def grad_fn_name(fn: Any) -> str:
    """The class name of an autograd node ('MulBackward0', 'AccumulateGrad')."""
    name = fn.name()
    return ACCUMULATE_GRAD if name.endswith("AccumulateGrad") else name


@functools.cache
def op_name_of(fn_name: str) -> str:
    """Forward op name guessed from a backward node name ('MulBackward0' -> 'mul')."""
    if fn_name == ACCUMULATE_GRAD:
        return "accumulate_grad"
    base = _BACKWARD_SUFFIX.sub("", fn_name) or fn_name
    return base.lower() if base[:1].isupper() and base[1:].islower() else base


def call_name_of(func: Any) -> str:
    """Readable name of a torch callable ('__mul__' -> 'mul', property getter -> its name)."""
    name = getattr(func, "__name__", None) or type(func).__name__
    if name == "__get__":
        owner = getattr(func, "__self__", None)
        name = getattr(owner, "__name__", "attribute")
    if name.startswith("__") and name.endswith("__"):
        name = name[2:-2]
        if name.startswith(("r", "i")) and name[1:] in {
            "add",
            "sub",
            "mul",
            "matmul",
            "truediv",
            "floordiv",
            "pow",
            "mod",
            "and",
            "or",
            "xor",
        }:
            name = name[1:] if name.startswith("i") else name
    return name


def iter_tensors(value: Any) -> Iterable[torch.Tensor]:
    """Tensors inside a value made of tensors, tuples, lists and dicts (iteratively)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            yield item
        elif isinstance(item, (list, tuple)):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))


_IN_PLACE_DUNDERS = frozenset(
    f"__i{op}__"
    for op in "add sub mul matmul truediv floordiv mod pow and or xor lshift rshift".split()
) | {"__setitem__", "__set__"}


def writes_in_place(func: Any, kwargs: Mapping[str, Any]) -> bool:
    """Whether a torch call may change the values of an existing tensor (add_, out=, x[i] = v)."""
    name = getattr(func, "__name__", "")
    return (
        (name.endswith("_") and not name.endswith("__"))
        or name in _IN_PLACE_DUNDERS
        or kwargs.get("out") is not None
    )


@functools.cache
def _signature(func: Callable[..., Any]) -> inspect.Signature:
    """The signature of backward() / autograd.grad(), computed once."""
    return inspect.signature(func)


def _user_line(filename: str = PROGRAM_FILENAME) -> int | None:
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_filename == filename:
            return frame.f_lineno
        frame = frame.f_back
    return None


_SIMPLE_RANGE_ARGS = (ast.Constant, ast.Name, ast.BinOp, ast.UnaryOp, ast.operator, ast.unaryop)


def _range_end(loop: ast.For, names: dict[str, Any]) -> tuple[str, int] | None:
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


def _top_level_frame() -> FrameType | None:
    """The frame of the program's top level."""
    frame: FrameType | None = sys._getframe(1)
    found = None
    while frame is not None:
        if frame.f_code.co_filename == PROGRAM_FILENAME:
            found = frame
        frame = frame.f_back
    return found


def _top_level_line() -> int | None:
    """The line the program's top level is running (inside a call, the line of the call)."""
    frame: FrameType | None = sys._getframe(1)
    line = None
    while frame is not None:
        if frame.f_code.co_filename == PROGRAM_FILENAME:
            line = frame.f_lineno
        frame = frame.f_back
    return line


_TORCH_DIR = str(Path(torch.__file__).resolve().parent) + os.sep
_TORCH_MODULES_DIR = str(Path(nn.modules.__file__).resolve().parent) + os.sep
EXPRESSION_LABEL_CHARS = 28  # a box label: about 270 px at the graph's 16 px font
EXPRESSION_CHARS = 200  # the full text kept for the inspector


def _calling_program_frame(depth: int) -> FrameType | None:
    """The program's frame that made the torch call being recorded, when the program made the
    call itself (not a module's forward or another torch function on its behalf)."""
    frame: FrameType | None = sys._getframe(depth + 1)
    while frame is not None and frame.f_code.co_filename.startswith(_TORCH_DIR):
        if frame.f_code.co_filename.startswith(_TORCH_MODULES_DIR):
            return None
        frame = frame.f_back
    if frame is None or frame.f_code.co_filename != PROGRAM_FILENAME:
        return None
    return frame


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


def _storage_key(t: torch.Tensor) -> tuple[Any, ...] | None:
    """Identifies the memory a tensor views: same key, same values (while both are alive).
    None for a tensor without storage of its own (torch.func wrappers, sparse, nested)."""
    if t.layout is not torch.strided or t.is_nested:
        return None
    try:
        return (t.data_ptr(), t.shape, t.stride(), t.dtype, t.device)
    except (RuntimeError, NotImplementedError):
        return None


def shape_of(t: torch.Tensor) -> list[int]:
    """A tensor's shape; a nested tensor, whose parts differ in shape, counts its parts."""
    if t.is_nested:
        return [t.size(0)]
    return list(t.shape)


def dense_for_summary(t: torch.Tensor) -> torch.Tensor:
    """A strided tensor with the values a sparse or nested tensor stands for."""
    if t.is_nested:
        return t.detach().to_padded_tensor(0.0)
    if t.layout is not torch.strided:
        return t.detach().to_dense()
    return t


def _plottable(t: torch.Tensor) -> torch.Tensor:
    """A float strided tensor whose norm stands for t in the chart (|z| for complex values)."""
    t = dense_for_summary(t.detach())
    return (t.abs() if t.is_complex() else t).float()


def autograd_role(t: torch.Tensor) -> tuple[Any, bool] | None:
    """(grad_fn, is_leaf) of a tensor; None for a view made stale by an in-place change of its
    base (an unbind view after optimizer.step()), where torch refuses to say."""
    try:
        return t.grad_fn, t.is_leaf
    except RuntimeError:
        return None


def in_function_transform() -> bool:
    """Whether a torch.func transform (grad, vmap, jacrev) is running the current call."""
    return torch._C._functorch.maybe_current_level() is not None


_saved_attrs_cache: dict[type, tuple[str, ...]] = {}


def _saved_attribute_names(fn: Any) -> tuple[str, ...]:
    cls = type(fn)
    names = _saved_attrs_cache.get(cls)
    if names is None:
        names = tuple(a for a in dir(fn) if a.startswith("_saved_"))
        _saved_attrs_cache[cls] = names
    return names


def _detached(grads: tuple[Any, ...]) -> tuple[Any, ...]:
    """The gradients a hook saw, cut from any graph (create_graph passes build one)."""
    if not any(g is not None and g.requires_grad for g in grads):
        return grads
    return tuple(g.detach() if g is not None else None for g in grads)


def _as_given(grads: tuple[Any, ...]) -> tuple[Any, ...]:
    """The gradients a hook saw, kept as they are (a pass that builds no graph)."""
    return grads


def _number_reprs(args: tuple[Any, ...]) -> list[str]:
    """Reprs of the plain numbers among a call's positional arguments."""
    return [repr(a) for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)][:8]


@dataclass
class _FailedCall:
    """A torch call that raised while recording, kept in case its error ends the program."""

    error: BaseException
    name: str
    inputs: list[torch.Tensor]
    numbers: list[str]
    line: int | None
    module: str | None


@dataclass
class _FailedPass:
    """A backward()/autograd.grad() call that raised, kept in case its error ends the program."""

    error: BaseException
    index: int
    roots: list[str]


@dataclass
class _PassRun:
    """Raw gradients seen by node hooks during one pass, summarized afterwards."""

    order: list[str]
    grad_outputs: dict[str, tuple[Any, ...]]
    grad_inputs: dict[str, tuple[Any, ...]]
    lock: threading.Lock
    grad_before: dict[str, TensorData | None] = field(default_factory=dict)


def _release_order(fn: Any) -> int:
    """AccumulateGrad first, then the autograd nodes in the order they were made."""
    seq = fn._sequence_nr()
    return -1 if seq >= _SEQUENCE_NR_MAX else seq


# Autograd nodes a finished recording still wraps. Once Python has wrapped the nodes of a deep
# chain (50,000 ops), torch tearing the chain down from its output recurses once per node and
# overflows the stack (SIGSEGV), even after the wrappers are gone. Held here until the
# program's own references are gone, the wrappers are the chain's last owners: dropped from
# the output back to the leaves, each frees one node and nothing below it.
_HELD_NODES: list[Any] = []
DEEP_GRAPH_NODES = 5_000  # below this many wrapped nodes a graph is freed at once
_HELD_LOCK = threading.Lock()


def release_held_graphs() -> None:
    """Free the autograd nodes of finished recordings, from the outputs back to the leaves.
    Call it once the program's variables are gone (or before the next recording)."""
    with _HELD_LOCK:
        fns = _HELD_NODES[:]
        _HELD_NODES.clear()
    fns.sort(key=_release_order)
    while fns:
        fns.pop()  # the newest node first: the output end of the chain


@dataclass
class _PausedLoop:
    """A loop whose passes beyond the recorded ones run unrecorded: counted and plotted."""

    span: tuple[int, int]  # first and last line of the program's statement that runs the loop
    first: int  # number of the first pass not recorded (1-based)
    line: int | None  # the line of that pass
    skipped: int = 0
    last_roots: list[torch.Tensor] = field(default_factory=list)
    # (loop variable, its last value) of each enclosing `for ... in range(...)`: all at their
    # last value, the loop's last iteration is recorded in full
    final: list[tuple[str, int]] | None = None


class Recorder:
    """Builds a Graph from forward calls, variable bindings and backward passes."""

    def __init__(self, device: str, options: TraceOptions) -> None:
        self.options = options
        self.graph = Graph(device=device)
        self.recording = True
        self.busy = False
        self.in_pass = False
        self.passes_total = 0
        self._fn_refs: list[Any] = []  # keeps node ids stable while recording
        self._op_of_fn: dict[int, str] = {}
        self._tensor_of_key: dict[tuple[Any, ...], str] = {}
        self._key_of_tensor: dict[str, tuple[Any, ...]] = {}
        self._tensor_refs: dict[str, torch.Tensor] = {}
        self._latest_node_of_obj: dict[int, str] = {}
        self._node_of_storage: dict[tuple[Any, ...], str] = {}
        self._nodes_by_id: dict[str, TensorNode | OpNode] = {}
        self._edge_keys: set[tuple[str, str]] = set()
        self._incoming: dict[str, list[str]] = {}
        self._bindings: dict[int, tuple[str, int, bool, Any]] = {}
        self._module_names: dict[int, tuple[str, Any]] = {}
        self._param_names: dict[int, str] = {}
        self._module_stack: list[tuple[dict[int, str], str, str]] = []  # (names, box, path)
        self._module_calls: dict[str, int] = {}
        self._root_modules: dict[int, dict[int, str]] = {}
        self._root_name: str | None = None  # the variable holding the outermost module called
        self.last_top_tensor: torch.Tensor | None = None
        self._series: dict[str, Series] = {}
        self._sources: list[tuple[str, torch.Tensor, bool]] | None = None
        self.when_stopped: list[Callable[[], None]] = []  # run when recording stops
        self.when_resumed: list[Callable[[], None]] = []  # run when it starts again after a loop
        self.pass_budget = options.max_passes  # passes recorded in full before the next pause
        self.paused: _PausedLoop | None = None  # the loop whose later passes run unrecorded
        self.stopped_for_good = False  # a limit ended the recording: it never resumes
        self.ever_stopped = False
        self._noted: set[str] = set()
        self._paused_names: dict[str, tuple[int, torch.Tensor]] = {}  # bound while paused
        self._top_statements: list[ast.stmt] | None = None
        self.mode: Any = None  # the RecordingMode, which steps aside once recording stops
        self.summaries = SummaryBatch(options.inline_limit)
        self.source_lines: list[str] = []  # the program's text, for labels of unnamed constants
        self._made_at: dict[int, tuple[CodeType, int, weakref.ref[torch.Tensor]]] = {}
        self.failed_call: _FailedCall | None = None
        self.failed_pass: _FailedPass | None = None
        self._last_reachable: tuple[tuple[int, ...], list[Any]] | None = None
        self.leaves_with_accumulators: list[torch.Tensor] = []  # in the order their nodes came
        self._saved_attributes: dict[tuple[str, str], SavedTensor] = {}

    # ----- nodes and edges -------------------------------------------------------------

    def _add_node(self, node: TensorNode | OpNode) -> None:
        if len(self._nodes_by_id) >= self.options.max_nodes:
            raise LimitExceeded(
                "nodes",
                f"the graph has more than {self.options.max_nodes} nodes; "
                "record a smaller model or fewer iterations",
            )
        self.graph.nodes.append(node)
        self._nodes_by_id[node.id] = node

    def _add_edge(self, source: str, target: str) -> None:
        if (source, target) in self._edge_keys or source == target:
            return
        self._edge_keys.add((source, target))
        self._incoming.setdefault(target, []).append(source)
        self.graph.edges.append(
            new_edge(id=f"e{len(self.graph.edges)}", source=source, target=target)
        )

    def _summary(self, t: torch.Tensor, preview: bool = True) -> TensorData:
        if t.layout is not torch.strided or t.is_nested:
            t = dense_for_summary(t)
        return self.summaries.add(t, preview)

    @staticmethod
    def _tensor_key(t: torch.Tensor) -> tuple[Any, ...]:
        fn = t.grad_fn
        if fn is None:
            return ("leaf", id(t))
        return ("out", id(fn), t.output_nr)

    def tensor_node(
        self, t: torch.Tensor, op_label: str | None = None, expression: str | None = None
    ) -> str:
        """Id of the node for tensor t in its current autograd role, creating it when new; an
        unnamed output is labelled by the source expression that made it, when known."""
        key = self._tensor_key(t)
        node_id = self._tensor_of_key.get(key)
        if node_id is not None:
            return node_id
        node_id = f"t{len(self._tensor_of_key)}"
        name, line = self._name_for(t)
        fn = t.grad_fn
        fn_name = grad_fn_name(fn) if fn is not None else None
        if fn is None:
            made = self._made_at.get(id(t))
            if made is not None and made[2]() is t:  # an unnamed constant: its source text
                expression, made_line = source_expression(self.source_lines, made[0], made[1])
                line = line if name is not None else made_line
        if name is not None:
            label = name
        elif expression is not None:
            label = shorten(expression)
        elif fn is not None:
            label = f"{op_label or op_name_of(fn_name or '')}_out"
        else:
            label = "param" if isinstance(t, nn.Parameter) else "leaf"
        node = new_tensor_node(
            id=node_id,
            kind="tensor",
            label=label,
            name=name,
            line=line,
            shape=shape_of(t),
            dtype=dtype_name(t.dtype),
            device=str(t.device),
            requires_grad=t.requires_grad,
            is_leaf=t.is_leaf,
            retains_grad=bool(t.retains_grad) if not t.is_leaf else False,
            is_parameter=isinstance(t, nn.Parameter),
            grad_fn=fn_name,
            version=t._version,
            value=self._summary(t),
            grad=None,
            expression=expression,
        )
        self._add_node(node)
        self._tensor_of_key[key] = node_id
        self._key_of_tensor[node_id] = key
        self._tensor_refs[node_id] = t
        self._latest_node_of_obj[id(t)] = node_id
        storage = _storage_key(t) if t.numel() else None
        if storage is not None:
            self._node_of_storage[storage] = node_id
        if fn is not None:
            self._fn_refs.append(fn)
        return node_id

    def remember_source(self, outputs: list[torch.Tensor]) -> None:
        """Where the program made new constant tensors, to label them by their expression."""
        if not self.source_lines or len(self._made_at) >= self.options.max_nodes:
            return
        constants = [t for t in outputs if t.grad_fn is None]
        if not constants:
            return
        frame = _calling_program_frame(3)
        if frame is None:
            return
        for t in constants:
            self._made_at[id(t)] = (frame.f_code, frame.f_lasti, weakref.ref(t))

    def remember_failure(
        self, exc: BaseException, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        """Keep the torch call that raised, to draw it if its error ends the program."""
        self.failed_call = _FailedCall(
            exc,
            call_name_of(func),
            list(iter_tensors((args, kwargs))),
            _number_reprs(args),
            _user_line(),
            self.current_module(),
        )

    def add_failed_call(self, exc: BaseException) -> str | None:
        """A ghost op node, with its inputs, for the torch call whose error ended the program."""
        failed = self.failed_call
        if failed is None or failed.error is not exc:
            return None
        self.failed_call = None
        for t in failed.inputs:
            if t.grad_fn is not None and id(t.grad_fn) not in self._op_of_fn:
                self.record_unseen(t, failed.line)
        input_ids = list(dict.fromkeys(self.tensor_node(t) for t in failed.inputs))
        node_id = f"op{len(self._op_of_fn)}"  # nothing is recorded after it
        self._add_node(
            build(
                OpNode,
                id=node_id,
                kind="op",
                label=failed.name,
                op=failed.name,
                grad_fn=None,
                line=failed.line,
                module=failed.module,
                call=len(self.graph.forward),
                sequence_nr=None,
                variable=None,
                created_by_pass=None,
                saved=[],
                next=[],
                constants=failed.numbers,
                failed=True,
            )
        )
        for tid in input_ids:
            self._add_edge(tid, node_id)
        self._add_step(node_id, [node_id], failed.name, input_ids, [], failed.line, failed.module)
        return node_id

    def _name_for(self, t: torch.Tensor) -> tuple[str | None, int | None]:
        param = self._param_names.get(id(t)) if isinstance(t, nn.Parameter) else None
        if param is not None:  # a parameter keeps its module path (model.0.weight)
            return param, None
        binding = self._bindings.get(id(t))
        if binding is not None and binding[3] is t:
            return binding[0], binding[1]
        return None, None

    def op_node(self, fn: Any, line: int | None, module: str | None, call: int | None) -> str:
        """Id of the op node for autograd node fn, created with its saved tensors when new."""
        node_id = self._op_of_fn.get(id(fn))
        if node_id is not None:
            return node_id
        node_id = f"op{len(self._op_of_fn)}"
        fn_name = grad_fn_name(fn)
        seq = fn._sequence_nr()
        node = new_op_node(
            id=node_id,
            kind="op",
            label=op_name_of(fn_name),
            op=op_name_of(fn_name),
            grad_fn=fn_name,
            line=line,
            module=module,
            call=call,
            sequence_nr=seq if seq < _SEQUENCE_NR_MAX else None,
            variable=None,
            created_by_pass=None,
            saved=[],  # every field, in order: build's quickest way
            constants=[],
            next=[],
            failed=False,
        )
        self._add_node(node)
        self._op_of_fn[id(fn)] = node_id
        self._fn_refs.append(fn)
        if fn_name == ACCUMULATE_GRAD:
            leaf = fn.variable
            self.leaves_with_accumulators.append(leaf)
            leaf_id = self.tensor_node(leaf)
            node.__dict__["variable"] = leaf_id
            node.__dict__["label"] = f"AccumulateGrad({self._nodes_by_id[leaf_id].label})"
            self._add_edge(node_id, leaf_id)
        else:
            node.__dict__["saved"] = self._saved_tensors(fn)
        return node_id

    def _saved_tensors(self, fn: Any) -> list[SavedTensor]:
        saved: list[SavedTensor] = []
        for attr in _saved_attribute_names(fn):
            try:
                value = getattr(fn, attr)
            except RuntimeError:  # already freed by an earlier backward
                continue
            name = attr.removeprefix("_saved_")
            if isinstance(value, torch.Tensor):
                linked = self._match_tensor(value)
                saved.append(
                    new_saved_tensor(
                        name=name,
                        tensor=linked,
                        value=None if linked else self._summary(value, preview=False),
                        repr=None,
                    )
                )
            elif value is not None:
                text = repr(value)
                record = self._saved_attributes.get((name, text))
                if record is None:  # one record per name and value, shared by every node
                    limit = self.options.max_saved_repr
                    record = self._saved_attributes[name, text] = new_saved_tensor(
                        name=name,
                        tensor=None,
                        value=None,
                        repr=text[:limit] + ("…" if len(text) > limit else ""),
                    )
                saved.append(record)
        return saved

    def _match_tensor(self, t: torch.Tensor) -> str | None:
        node_id = self._latest_node_of_obj.get(id(t))
        if node_id is not None and self._tensor_refs.get(node_id) is t:
            return node_id
        if t.grad_fn is not None:
            return self._tensor_of_key.get(self._tensor_key(t))
        storage = _storage_key(t) if t.numel() else None
        return None if storage is None else self._node_of_storage.get(storage)

    def discover(
        self,
        fns: Iterable[Any],
        line: int | None,
        module: str | None,
        call: int | None,
        created_by_pass: int | None = None,
    ) -> list[str]:
        """Op nodes for every not-yet-seen autograd node reachable from fns, with their edges."""
        created: list[str] = []
        stack = [fn for fn in fns if fn is not None and id(fn) not in self._op_of_fn]
        for fn in stack:
            self.op_node(fn, line, module, call)
            created.append(self._op_of_fn[id(fn)])
        while stack:
            fn = stack.pop()
            target = self._op_of_fn[id(fn)]
            next_ops: list[str | None] = []
            target_node = self._nodes_by_id[target]
            if isinstance(target_node, OpNode):
                target_node.__dict__["next"] = next_ops  # no pydantic __setattr__ in this loop
            for producer, output_nr in fn.next_functions:
                if producer is None:
                    next_ops.append(None)
                    continue
                source = self._op_of_fn.get(id(producer))
                if source is None:  # new: its node, and a walk on from it
                    source = self.op_node(producer, line, module, call)
                    node = self._nodes_by_id[source]
                    if isinstance(node, OpNode):
                        node.__dict__["created_by_pass"] = created_by_pass
                    if node.grad_fn != ACCUMULATE_GRAD:
                        created.append(source)
                        stack.append(producer)
                next_ops.append(source)
                self._link(producer, output_nr, source, target)
        return created

    def _link(self, producer: Any, output_nr: int, producer_op: str, consumer_op: str) -> None:
        node = self._nodes_by_id[producer_op]
        if isinstance(node, OpNode) and node.variable is not None:
            self._add_edge(node.variable, consumer_op)
            return
        tensor_id = self._tensor_of_key.get(("out", id(producer), output_nr))
        if tensor_id is not None:
            self._add_edge(producer_op, tensor_id)
            self._add_edge(tensor_id, consumer_op)
        else:
            self._add_edge(producer_op, consumer_op)

    def tensor_inputs_of(self, op_id: str) -> list[str]:
        """Tensor nodes with an edge into op_id."""
        return [s for s in self._incoming.get(op_id, []) if self._nodes_by_id[s].kind == "tensor"]

    def _reconnect_outputs(self, tensor_ids: list[str]) -> None:
        """Route producer->consumer edges through a tensor node created after its consumers."""
        for tensor_id in tensor_ids:
            key = self._key_of_tensor[tensor_id]
            if key[0] != "out":
                continue
            producer_op = self._op_of_fn.get(key[1])
            if producer_op is not None:
                self._add_edge(producer_op, tensor_id)

    # ----- forward ---------------------------------------------------------------------

    def current_module(self) -> str | None:
        """Dotted path of the nn.Module whose forward is running, relative to the outermost one."""
        if not self._module_stack:
            return None
        return self._module_stack[-1][1] or None

    def on_call(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        """Record a Python-level torch call when it created autograd nodes."""
        outputs = list(iter_tensors(out))
        new_fns = [
            o.grad_fn
            for o in outputs
            if o.grad_fn is not None and id(o.grad_fn) not in self._op_of_fn
        ]
        if not new_fns:
            self.remember_source(outputs)
            return
        line = _user_line()
        module = self.current_module()
        inputs = list(iter_tensors((args, kwargs)))
        for t in inputs:  # tensors made by calls the recorder cannot see (autograd.Function.apply)
            if t.grad_fn is not None and id(t.grad_fn) not in self._op_of_fn:
                self.record_unseen(t, line)
        call_name = call_name_of(func)
        step_index = len(self.graph.forward)
        group = self.discover(new_fns, line, module, step_index)
        head = self._op_of_fn[id(new_fns[0])]
        head_node = self._nodes_by_id[head]
        head_node.label = call_name
        if isinstance(head_node, OpNode):  # for the chain rule's "b = w + 1"
            head_node.constants = _number_reprs(args)
        input_ids = [self.tensor_node(t) for t in inputs]
        for t, tid in zip(inputs, input_ids, strict=True):
            if not t.requires_grad:
                self._add_edge(tid, head)
        made = [o for o in outputs if o.grad_fn is not None]
        texts = self._output_expressions(len(made))
        output_ids = [
            self.tensor_node(o, call_name, text) for o, text in zip(made, texts, strict=True)
        ]
        self._reconnect_outputs(output_ids)
        self._add_step(head, group, call_name, input_ids, output_ids, line, module)

    def _output_expressions(self, count: int) -> list[str | None]:
        """The program's source text of the call being recorded, for each of its count outputs
        ('x * w'; 'x.chunk(2)[0]', ...); None where the program did not make the call itself."""
        frame = _calling_program_frame(3) if self.source_lines and count else None
        if frame is None:
            return [None] * count
        text, _ = source_expression(self.source_lines, frame.f_code, frame.f_lasti)
        if text is None or count == 1:
            return [text] * count
        return [f"{text}[{i}]" for i in range(count)]

    def record_unseen(self, t: torch.Tensor, line: int | None) -> str:
        """Record a tensor whose autograd node was created out of sight, as its own step."""
        fn = t.grad_fn
        step_index = len(self.graph.forward)
        group = self.discover([fn], line, self.current_module(), step_index)
        head = self._op_of_fn[id(fn)]
        name = grad_fn_name(fn)
        output_id = self.tensor_node(t)
        self._reconnect_outputs([output_id])
        inputs = self.tensor_inputs_of(head)
        self._add_step(
            head, group, op_name_of(name), inputs, [output_id], line, self.current_module()
        )
        return output_id

    def _add_step(
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
            new_forward_step(
                node=head,
                nodes=nodes,
                call=call,
                inputs=inputs,
                outputs=outputs,
                line=line,
                module=module,
                after_pass=self.passes_total,
            )
        )

    @contextlib.contextmanager
    def quiet(self) -> Iterator[None]:
        """Run torch's own work (gradcheck's passes) without recording it."""
        previous, self.in_pass = self.in_pass, True
        try:
            yield
        finally:
            self.in_pass = previous

    def bind(self, line: int, module_scope: bool, *pairs: tuple[str, Any]) -> None:
        """Called by instrumented code after each assignment: names tensors and modules."""
        if self.busy:
            return
        if not self.recording and not self.in_pass and self.left_paused_loop():
            self.resume()
        elif not self.recording and not self.in_pass and self.at_final_iteration():
            self.resume_for_last_iteration()
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

    def _name_module(self, name: str, module: nn.Module) -> None:
        """Give a module bound to a variable, its sub-modules and parameters their paths."""
        if id(module) in self._module_names:
            return  # a sub-module keeps the path of the model it belongs to
        for path, sub in module.named_modules():
            self._module_names.setdefault(id(sub), (f"{name}.{path}" if path else name, sub))
        for pname, param in module.named_parameters():
            self._param_names.setdefault(id(param), f"{name}.{pname}")

    def _bind_one(self, name: str, value: Any, line: int, module_scope: bool) -> None:
        if isinstance(value, nn.Module):
            if module_scope:  # names inside functions and __init__ are temporaries
                self._name_module(name, value)
            return
        if isinstance(value, nn.Parameter) and id(value) in self._param_names:
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
                self._paused_names[name] = (line, value)  # the latest per name: no growth
            return
        previous = self._bindings.get(id(value))
        if previous is not None and previous[3] is value and (previous[2] or not module_scope):
            return  # the first binding wins, except that the program's top level names last
        self._bindings[id(value)] = (name, line, module_scope, value)
        if module_scope:
            self.last_top_tensor = value
        if not self.recording:
            return
        if value.grad_fn is not None and id(value.grad_fn) not in self._op_of_fn:
            self.record_unseen(value, line)
        node_id = self._latest_node_of_obj.get(id(value))
        if node_id is not None and self._tensor_refs.get(node_id) is value:
            node = self._nodes_by_id[node_id]
            if isinstance(node, TensorNode):
                node.name, node.label, node.line = name, name, line

    def note(self, key: str, text: str, **params: str | int | None) -> None:
        """A note for the reader, in English and as a message key the page translates."""
        self.graph.notes.append(text)
        self.graph.messages.append(NoteMessage(key=key, params=params, text=text))

    def module_entered(self, module: nn.Module) -> None:
        """Forward pre-hook of every module: push its path."""
        if not self._module_stack:
            names = self._root_modules.get(id(module))
            if names is None:
                names = {id(m): n for n, m in module.named_modules()}
                self._root_modules[id(module)] = names
                owner = self._module_names.get(id(module))
                prefix = f"{owner[0]}." if owner else ""
                for pname, param in module.named_parameters():
                    self._param_names.setdefault(id(param), prefix + pname)
            self._module_stack.append((names, "", ""))
            self._module_calls = {}  # calls are counted within one call of the outermost module
            owner = self._module_names.get(id(module))
            self._root_name = owner[0] if owner else None
            return
        names, parent_box, parent_path = self._module_stack[-1]
        path = names.get(id(module), type(module).__name__)
        inside = path
        if parent_box != parent_path and path.startswith(parent_path + "."):
            inside = parent_box + path[len(parent_path) :]  # in a repeated call: 'block#2.fc'
        calls = self._module_calls.get(inside, 0) + 1
        self._module_calls[inside] = calls
        box = inside if calls == 1 else f"{inside}#{calls}"  # one box per call of a module
        if box not in self.graph.modules:
            self.graph.modules[box] = describe_module(module)
            if self._root_name:  # the box reads as the parameters do: model.0, model.0.weight
                self.graph.module_paths[box] = f"{self._root_name}.{box}"
        self._module_stack.append((names, box, path))

    def module_left(self) -> None:
        """Forward hook of every module: pop its path."""
        if self._module_stack:
            self._module_stack.pop()

    # ----- pausing, resuming and limits ------------------------------------------------

    def note_once(self, key: str, text: str, **params: str | int | None) -> None:
        """A note said once per recording (per key and parameters), however often its cause
        comes back."""
        once = f"{key}:{sorted(params.items())}"
        if once not in self._noted:
            self._noted.add(once)
            self.note(key, text, **params)

    def stop_recording(self) -> None:
        """Let the program run on unrecorded (it may resume after the loop that stopped it)."""
        if not self.recording:
            return
        self.recording = False
        self.ever_stopped = True
        self._module_stack.clear()
        for stop in self.when_stopped:
            stop()

    def hit_node_limit(self, line: int | None = None) -> None:
        """The graph is full: keep what was recorded, run the rest unrecorded, and say so."""
        self.stopped_for_good = True
        self.paused = None
        self.stop_recording()
        limit = self.options.max_nodes
        where = f" at line {line}" if line is not None else ""
        text = (
            f"The graph reached its limit of {limit} nodes{where}; the rest of the program ran "
            "without being recorded, and the graph shows what was recorded before."
        )
        if "nodeLimit" in self._noted:
            return
        self._noted.add("nodeLimit")
        if line is None:
            self.note("nodeLimitNoLine", text, limit=limit)
        else:
            self.note("nodeLimit", text, limit=limit, line=line)

    def _top_statement_span(self, line: int | None) -> tuple[int, int] | None:
        """First and last line of the program's top-level statement that holds line."""
        if line is None or not self.source_lines:
            return None
        statement = self._top_statement(line)
        return None if statement is None else (statement.lineno, statement.end_lineno or line)

    def _top_statement(self, line: int | None) -> ast.stmt | None:
        """The program's top-level statement that holds line."""
        if line is None or not self.source_lines:
            return None
        if self._top_statements is None:
            try:
                self._top_statements = ast.parse("\n".join(self.source_lines)).body
            except SyntaxError:
                self._top_statements = []
        for statement in self._top_statements:
            if statement.lineno <= line <= (statement.end_lineno or statement.lineno):
                return statement
        return None

    def _final_iteration(self, line: int | None) -> list[tuple[str, int]] | None:
        """(variable, last value) of every top-level `for v in range(...)` around line, when
        the ranges can be read without calling anything; None when a loop is of another kind."""
        frame = _top_level_frame()
        node: ast.AST | None = self._top_statement(_top_level_line())
        if frame is None or node is None or line is None:
            return None
        final: list[tuple[str, int]] = []
        while node is not None:
            if isinstance(node, (ast.While, ast.AsyncFor)):
                return None
            if isinstance(node, ast.For):
                last = _range_end(node, frame.f_globals)
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
        frame = _top_level_frame()
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

    def pause_in_loop(self, line: int | None) -> None:
        """Stop recording passes in full, to resume once the program leaves the statement that
        runs this loop (a hooks demo, a second model after a training loop); once another round
        could pass most_passes, the pause lasts to the program's end."""
        span = self._top_statement_span(_top_level_line())
        self.stop_recording()
        if span is not None and not self.stopped_for_good:
            last_round = len(self.graph.backward) + self.options.max_passes + 1 > most_passes(
                self.options.max_passes
            )
            if last_round:
                span = (span[0], sys.maxsize)
            self.paused = _PausedLoop(span=span, first=self.passes_total, line=line)
            self.paused.final = None if last_round else self._final_iteration(line)

    def left_paused_loop(self) -> bool:
        """Whether the program has left the statement whose loop paused the recording."""
        paused = self.paused
        if paused is None:
            return False
        line = _top_level_line()
        return line is not None and not paused.span[0] <= line <= paused.span[1]

    def resume(self, last_in_full: bool = False) -> None:
        """Record again in full after a paused loop: its summary first, then what follows."""
        if self.mode is not None:
            self.mode.step_back()
        for start in self.when_resumed:
            start()
        self.recording = True
        self._sources = None
        self.pass_budget = len(self.graph.backward) + self.options.max_passes
        self.close_paused_loop(last_in_full)

    def close_paused_loop(self, last_in_full: bool = False) -> None:
        """The graph of a paused loop's last pass, and a note of the passes not recorded."""
        paused, self.paused = self.paused, None
        for name, (line, t) in self._paused_names.items():
            self._bindings.pop(id(t), None)  # re-inserted: the latest binding comes last
            self._bindings[id(t)] = (name, line, True, t)
        self._paused_names = {}
        if paused is None or not paused.skipped:
            return
        last = paused.first + paused.skipped - 1
        try:
            for t in paused.last_roots:
                if t.grad_fn is not None and id(t.grad_fn) not in self._op_of_fn:
                    self.record_unseen(t, paused.line)
        except LimitExceeded:
            self.hit_node_limit(paused.line)
        where = f" (line {paused.line})" if paused.line is not None else ""
        if last_in_full:
            self.note(
                "passesSummarisedLastFull",
                f"Backward passes {paused.first}–{last}{where} ran without being recorded in "
                "full: the chart keeps every one, and the loop's last pass is recorded in full.",
                first=paused.first,
                last=last,
                line=paused.line,
            )
            return
        self.note(
            "passesSummarised",
            f"Backward passes {paused.first}–{last}{where} ran without being recorded in full: "
            "the chart keeps every one, the graph of the last one is shown, and each leaf "
            "shows its final .grad.",
            first=paused.first,
            last=last,
            line=paused.line,
        )

    def _add_final_leaves(self) -> None:
        """Leaves the program bound while recording was paused: their final .grad, as torch
        leaves it (a parameter rebound in every iteration of a long loop)."""
        latest: dict[str, torch.Tensor] = {}
        for name, _line, module_scope, value in self._bindings.values():
            if module_scope and isinstance(value, torch.Tensor):
                latest[name] = value
        for t in latest.values():
            node_id = self._latest_node_of_obj.get(id(t))
            if node_id is not None and self._tensor_refs.get(node_id) is t:
                continue
            role = autograd_role(t)
            if role is None or not role[1] or not t.requires_grad or t.grad is None:
                continue
            self.tensor_node(t)

    # ----- backward --------------------------------------------------------------------

    def run_pass(
        self,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        added: bool = False,
    ) -> Any:
        """Run a backward()/autograd.grad() call under node hooks and record it as a pass."""
        if not self.recording and self.left_paused_loop():
            self.resume()
        elif not self.recording and self.at_final_iteration():
            self.resume_for_last_iteration()  # a last iteration that bound no variable first
        if (
            not self.recording
            and func is not torch.autograd.grad
            and args
            and isinstance(args[0], torch.Tensor)
        ):  # the run goes on unrecorded: count the pass and plot its loss, nothing more
            self.passes_total += 1
            result = func(*args, **kwargs)
            self._skipped([args[0]])
            return result
        kind = "grad" if func is torch.autograd.grad else "backward"
        bound = _signature(func).bind(*args, **kwargs)
        bound.apply_defaults()
        params = bound.arguments
        roots = list(iter_tensors(params.get("outputs", params.get("tensors", params.get("self")))))
        wrt = list(iter_tensors(params.get("inputs"))) if params.get("inputs") is not None else []
        create_graph = bool(params.get("create_graph"))
        line = _user_line()
        self.passes_total += 1
        if self.recording and len(self.graph.backward) >= self.pass_budget:
            self.pause_in_loop(line)
        if self.recording:
            try:
                for t in roots:
                    if t.grad_fn is not None and id(t.grad_fn) not in self._op_of_fn:
                        self.record_unseen(t, line)
                root_ids = [self.tensor_node(t) for t in roots]
                wrt_ids = [self.tensor_node(t) for t in wrt]
                fns = self._reachable([t.grad_fn for t in roots])
                for fn in fns:
                    if id(fn) not in self._op_of_fn:
                        self.discover([fn], line, None, None)
            except LimitExceeded as exc:
                if exc.limit != "nodes":
                    raise
                self.hit_node_limit(line)
        if not self.recording:
            self.summaries.flush()
            result = func(*args, **kwargs)
            self._skipped(roots)
            return result
        run = _PassRun(order=[], grad_outputs={}, grad_inputs={}, lock=threading.Lock())
        handles = self._hook(fns, run, create_graph)
        self.in_pass = True
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            self.passes_total -= 1  # the program's error, not a pass left out of the recording
            self.failed_pass = _FailedPass(exc, len(self.graph.backward), root_ids)
            failed = len(self.graph.backward) + 1
            self.note(
                "failedPass",
                f"Backward pass {failed} raised an error, so it was not recorded.",
                n=failed,
            )
            raise
        finally:
            self.in_pass = False
            for handle in handles:
                handle.remove()
        index = len(self.graph.backward)
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
            self.graph.backward.append(record)
            self._fill_pass(record, run, fns)
            if kind == "grad":
                grads = result if isinstance(result, tuple) else (result,)
                for tid, g in zip(wrt_ids, grads, strict=False):
                    if g is not None:
                        record.results[tid] = self._summary(g)
                if create_graph:
                    self._record_gradient_graph_within_limit(
                        [g for g in grads if g is not None], index, line
                    )
            elif create_graph:
                leaves = [
                    self._tensor_refs[self._nodes_by_id[self._op_of_fn[id(f)]].variable or ""]
                    for f in fns
                    if grad_fn_name(f) == ACCUMULATE_GRAD
                ]
                self._record_gradient_graph_within_limit(
                    [leaf.grad for leaf in leaves if leaf.grad is not None], index, line
                )
            self.summaries.flush()  # .grad grows in place, and the program may change the rest
            self._record_series(roots)
        return result

    def _reachable(self, roots: Iterable[Any]) -> list[Any]:
        """Every autograd node reachable from roots, each once. A node's next_functions never
        change, so the answer for the same roots is kept (their ids are held by _fn_refs)."""
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
            stack.extend(p for p, _ in fn.next_functions if p is not None and id(p) not in seen)
        self._fn_refs.extend(roots)  # keeps the ids of the key from being reused
        self._last_reachable = (key, order)
        return order

    def _hook(self, fns: list[Any], run: _PassRun, create_graph: bool) -> list[Any]:
        """One hook per node: a pre-hook on AccumulateGrad (which sends nothing on, and whose
        leaf's .grad is read before the gradient is added), a post-hook on every other node,
        which sees what came in and what went out. The engine runs one node at a time from
        pre-hook to post-hook, so either kind gives the order the nodes ran in. Only a
        create_graph pass makes gradients that are part of a graph, to be cut from it."""
        keep = _detached if create_graph else _as_given
        handles = []
        for fn in fns:
            op_id = self._op_of_fn[id(fn)]
            variable = getattr(self._nodes_by_id[op_id], "variable", None)
            if variable is not None:
                leaf = self._tensor_refs[variable]

                def pre(
                    grad_outputs: tuple[Any, ...], op_id: str = op_id, leaf: Any = leaf
                ) -> None:
                    with run.lock:
                        run.order.append(op_id)
                        before = leaf.grad  # a copy: .grad grows in place, its statistics wait
                        run.grad_before[op_id] = (
                            None if before is None else self._summary(before.detach().clone())
                        )
                        run.grad_outputs[op_id] = keep(grad_outputs)

                handles.append(fn.register_prehook(pre))
            else:

                def post(
                    grad_inputs: tuple[Any, ...], grad_outputs: tuple[Any, ...], op_id: str = op_id
                ) -> None:
                    with run.lock:
                        run.order.append(op_id)
                        run.grad_outputs[op_id] = keep(grad_outputs)
                        run.grad_inputs[op_id] = keep(grad_inputs)

                handles.append(fn.register_hook(post))
        return handles

    def _fill_pass(self, record: BackwardPass, run: _PassRun, fns: list[Any]) -> None:
        # the engine hands the same tensor to a node's hook and its producer's: one summary
        # each (run holds every tensor seen, so no id is reused while this runs)
        summary_of: dict[int, TensorData | None] = {id(None): None}
        add = self._summary
        for op_id in run.order:
            grad_inputs = run.grad_inputs.get(op_id, ())
            grad_outputs = run.grad_outputs.get(op_id, ())
            for grads in (grad_inputs, grad_outputs):
                for g in grads:
                    if id(g) not in summary_of:
                        summary_of[id(g)] = add(g, False)
            record.steps.append(
                new_backward_step(
                    node=op_id,
                    grad_inputs=[summary_of[id(g)] for g in grad_inputs],
                    grad_outputs=[summary_of[id(g)] for g in grad_outputs],
                    grad_before=run.grad_before.get(op_id),
                    rule=None,
                )
            )
        ran = set(run.order)
        for fn in fns:
            op_id = self._op_of_fn[id(fn)]
            node = self._nodes_by_id[op_id]
            if isinstance(node, OpNode) and node.variable is not None and op_id in ran:
                leaf = self._tensor_refs[node.variable]
                if leaf.grad is not None:
                    record.grads[node.variable] = self._summary(leaf.grad)
        for tensor_id, key in self._key_of_tensor.items():
            if key[0] != "out":
                continue
            op_id = self._op_of_fn.get(key[1])
            grads = run.grad_outputs.get(op_id or "")
            if grads is not None and key[2] < len(grads):
                data = summary_of[id(grads[key[2]])]  # every step's gradients have one
                if data is not None:
                    record.tensor_grads[tensor_id] = data

    def _skipped(self, roots: list[torch.Tensor]) -> None:
        """A pass that ran unrecorded: plotted, and kept as the paused loop's latest."""
        self._record_series(roots)
        if self.paused is not None:
            self.paused.skipped += 1
            self.paused.last_roots = [t for t in roots if t.grad_fn is not None]

    def _record_gradient_graph_within_limit(
        self, grads: list[torch.Tensor], index: int, line: int | None
    ) -> None:
        try:
            self._record_gradient_graph(grads, index, line)
        except LimitExceeded as exc:
            if exc.limit != "nodes":
                raise
            self.hit_node_limit(line)

    def _record_gradient_graph(
        self, grads: list[torch.Tensor], index: int, line: int | None
    ) -> None:
        fns = [g.grad_fn for g in grads if g.grad_fn is not None]
        self.discover(fns, line, None, None, created_by_pass=index)
        for fn in fns:
            node = self._nodes_by_id[self._op_of_fn[id(fn)]]
            if isinstance(node, OpNode):
                node.created_by_pass = index
        ids = [self.tensor_node(g, "grad") for g in grads if g.grad_fn is not None]
        self._reconnect_outputs(ids)

    def _series_sources(self) -> list[tuple[str, torch.Tensor, bool]]:
        """(series name, leaf, is a scalar) of every leaf plotted once per pass."""
        if self.recording or self._sources is None:
            # one source per series name: a leaf rebound under the same name plots its latest
            sources: dict[str, tuple[str, torch.Tensor, bool]] = {}
            norms = 0
            for node_id, t in list(self._tensor_refs.items())[:10_000]:
                node = self._nodes_by_id[node_id]
                if isinstance(node, TensorNode) and node.is_leaf and node.requires_grad:
                    if t.numel() == 1:
                        sources[node.label] = (node.label, t, True)
                    elif norms < 16 or f"‖{node.label}‖" in sources:
                        norms += f"‖{node.label}‖" not in sources
                        sources[f"‖{node.label}‖"] = (f"‖{node.label}‖", t, False)
            self._sources = list(sources.values())  # fixed while paused: no new leaves drawn
        return self._sources

    def _record_series(self, roots: list[torch.Tensor]) -> None:
        with self.quiet():
            if len(roots) == 1:
                self._append_series("loss", "loss", scalar_of(roots[0]))
            sources = self._series_sources()
            vectors = [_plottable(t) for _, t, scalar in sources if not scalar]
            norms = iter(torch._foreach_norm(vectors)) if vectors else iter(())
            for name, t, scalar in sources:
                value = scalar_of(t) if scalar else float(next(norms))
                self._append_series(name, "parameter", value)

    def _append_series(self, name: str, kind: str, value: float | None) -> None:
        series = self._series.get(name)
        if series is None:
            series = self._series[name] = Series(name=name, kind=kind, values=[])
            series.values.extend([None] * (self.passes_total - 1))
        if len(series.values) < self.options.max_series_points:
            series.values.append(value if value is None or np.isfinite(value) else str(value))

    # ----- finishing -------------------------------------------------------------------

    def release(self) -> None:
        """Drop the recorder's hold on the program's tensors, and hand its autograd nodes to
        release_held_graphs(), which frees them once the program's own references are gone."""
        self._last_reachable = None
        self.paused = None
        self._paused_names = {}
        self._made_at = {}
        self.leaves_with_accumulators = []
        self.last_top_tensor = None
        self._sources = None
        self._tensor_refs = {}
        self._bindings = {}
        fns, self._fn_refs = self._fn_refs, []
        if len(fns) < DEEP_GRAPH_NODES:
            return  # torch frees a graph this shallow from any end
        with _HELD_LOCK:
            _HELD_NODES.extend(fns)

    def finish(self) -> Graph:
        """Fill the fields known only at the end (.grad, retains_grad) and return the Graph."""
        if self.ever_stopped and not self.stopped_for_good:
            try:
                self.close_paused_loop()
                self._add_final_leaves()
            except LimitExceeded as exc:
                if exc.limit != "nodes":
                    raise
                self.hit_node_limit()
        for node_id, t in self._tensor_refs.items():
            node = self._nodes_by_id[node_id]
            if not isinstance(node, TensorNode) or self._latest_node_of_obj.get(id(t)) != node_id:
                continue
            role = autograd_role(t)
            if role is None:  # a stale view: its recorded state stands
                continue
            is_leaf = role[1]
            if not is_leaf:
                node.retains_grad = bool(t.retains_grad)
            if (is_leaf or t.retains_grad) and t.grad is not None:
                node.grad = self._summary(t.grad)
        self.summaries.flush()
        self.graph.series = [
            s for s in self._series.values() if any(v is not None for v in s.values)
        ]
        if self.passes_total > len(self.graph.backward):
            self.graph.truncated = Truncation(
                passes_recorded=len(self.graph.backward), passes_total=self.passes_total
            )
        self._distinct_labels()
        attach_rules(self.graph)
        return self.graph

    def _distinct_labels(self) -> None:
        """Number the unnamed tensors that share a label among the calls made between two
        backward passes, which are drawn together ('x * w', 'x * w #2'; 'mul_out', 'mul_out#2'),
        and give every AccumulateGrad its leaf's final label. Each iteration of a loop starts
        the count again, so every pass reads (and is laid out) alike."""
        segment_of: dict[str, int] = {}
        for step in self.graph.forward:
            for tensor_id in (*step.outputs, *step.inputs):
                segment_of.setdefault(tensor_id, step.after_pass)
        seen: dict[tuple[int, str], int] = {}
        for node in self.graph.nodes:
            if isinstance(node, TensorNode) and node.name is None:
                key = (segment_of.get(node.id, -1), node.label)
                count = seen[key] = seen.get(key, 0) + 1
                if count > 1:
                    node.label = f"{node.label}{' #' if ' ' in node.label else '#'}{count}"
        for node in self.graph.nodes:
            if isinstance(node, OpNode) and node.variable is not None:
                node.label = f"AccumulateGrad({self._nodes_by_id[node.variable].label})"


class FewerCollections:
    """Rarer garbage collections while a program runs under the recorder: the recorder allocates
    many small objects, and each collection walks every young object (tensors included)."""

    def __init__(self, first_generation: int = 50_000) -> None:
        self.first_generation = first_generation
        self.saved: tuple[int, ...] = ()

    def __enter__(self) -> None:
        self.saved = gc.get_threshold()
        gc.set_threshold(max(self.first_generation, self.saved[0]), *self.saved[1:])

    def __exit__(self, *exc: object) -> None:
        gc.set_threshold(*self.saved)


class PausedCollections:
    """No cyclic garbage collection while the recorder alone builds records (no program code
    runs): records are freed by reference counting, so walking them again and again while they
    are made is wasted work. Nested and concurrent uses share one pause; the last one out
    restores collections if they were on when the first came in."""

    _lock = threading.Lock()
    _depth = 0
    _was_enabled = False

    def __enter__(self) -> None:
        with PausedCollections._lock:
            if PausedCollections._depth == 0:
                PausedCollections._was_enabled = gc.isenabled()
                gc.disable()
            PausedCollections._depth += 1

    def __exit__(self, *exc: object) -> None:
        with PausedCollections._lock:
            PausedCollections._depth -= 1
            if PausedCollections._depth == 0 and PausedCollections._was_enabled:
                gc.enable()


# files on the way from a backward()/grad() call to the mode: the dispatcher and the functions
_DISPATCH_FILES = frozenset(
    str(Path(m.__file__).resolve())
    for m in (torch.overrides, torch.autograd, torch._tensor)
    if getattr(m, "__file__", None)
)


def _called_from_torch() -> bool:
    """Whether the backward()/grad() being dispatched was called by torch's own code."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename in _DISPATCH_FILES:
        frame = frame.f_back
    return frame is not None and frame.f_code.co_filename.startswith(_TORCH_DIR)


class RecordingMode(TorchFunctionMode):
    """Routes every torch call of the program through the Recorder."""

    def __init__(self, recorder: Recorder) -> None:
        super().__init__()
        self.recorder = recorder
        self._collections = FewerCollections()
        self.aside = False
        self._original_backward: Any = None
        recorder.mode = self

    def __enter__(self) -> RecordingMode:
        self._collections.__enter__()
        return super().__enter__()

    def __exit__(self, *exc: Any) -> None:
        self.step_back()
        try:
            super().__exit__(*exc)
        finally:
            self._collections.__exit__()

    def step_aside(self) -> None:
        """Leave torch's mode stack once nothing more is recorded, so torch calls run at their
        own speed; backward() keeps being counted for the training plot. Only called between
        torch calls (from a variable binding), where this mode is on top of the stack."""
        depth = torch._C._len_torch_function_stack()
        if self.aside or not depth or torch._C._get_function_stack_at(depth - 1) is not self:
            return
        torch._C._pop_torch_function_stack()
        self.aside = True
        recorder, original = self.recorder, torch.Tensor.backward
        self._original_backward = original

        @functools.wraps(original)
        def counted_backward(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            return recorder.run_pass(original, (tensor, *args), kwargs)

        torch.Tensor.backward = counted_backward  # type: ignore[method-assign]

    def step_back(self) -> None:
        """Return to the mode stack (before leaving it as a context manager)."""
        if not self.aside:
            return
        torch.Tensor.backward = self._original_backward  # type: ignore[method-assign]
        torch._C._push_on_torch_function_stack(self)
        self.aside = False

    def __torch_function__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        rec = self.recorder
        if not rec.recording and func not in PASS_FUNCTIONS:  # the run goes on unrecorded
            return func(*args, **(kwargs or {}))
        kwargs = kwargs or {}
        if in_function_transform():  # torch.func's wrapped tensors have no storage to record
            rec.note_once(
                "functionTransform",
                "torch.func transforms (grad, vmap, jacrev, ...) ran without being recorded "
                "inside; the tensors they return are recorded where the program uses them.",
            )
            return func(*args, **kwargs)
        if len(rec.summaries) and writes_in_place(func, kwargs):
            rec.summaries.flush()  # pending statistics must see the values as they were recorded
        if rec.busy or rec.in_pass:
            return func(*args, **kwargs)
        if func in PASS_FUNCTIONS:
            if _called_from_torch():  # gradcheck, jacobian: torch's own passes, not the program's
                with rec.quiet():
                    return func(*args, **kwargs)
            return rec.run_pass(func, args, kwargs)
        try:
            out = func(*args, **kwargs)
        except Exception as exc:
            if rec.recording and not isinstance(exc, LimitExceeded):
                rec.remember_failure(exc, func, args, kwargs)
            raise
        if rec.recording:
            try:
                rec.on_call(func, args, kwargs, out)
            except LimitExceeded as exc:
                if exc.limit != "nodes":
                    raise
                rec.hit_node_limit(_user_line())
            except Exception as exc:  # noqa: BLE001 - a call the recorder cannot describe
                name, message = call_name_of(func), f"{type(exc).__name__}: {str(exc)[:200]}"
                rec.note_once(
                    "callNotRecorded",
                    f"A call of {name} could not be recorded; the program ran on, and the graph "
                    f"leaves it out: {message}",
                    call=name,
                    message=message,
                )
        return out


class _ModuleHooks:
    """Process-wide nn.Module forward hooks that keep the Recorder's module stack."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.handles: list[Any] = []

    def __enter__(self) -> _ModuleHooks:
        self.add()
        # global hooks send every module call down torch's slow path: drop them once the
        # recording stops, so the rest of a training loop runs at nearly its own speed
        self.recorder.when_stopped.append(self.remove)
        self.recorder.when_resumed.append(self.add)
        return self

    def add(self) -> None:
        """Put the hooks in (once)."""
        if self.handles:
            return
        rec = self.recorder
        self.handles = [
            nn.modules.module.register_module_forward_pre_hook(
                lambda module, args: rec.module_entered(module)
            ),
            nn.modules.module.register_module_forward_hook(
                lambda module, args, out: rec.module_left(), always_call=True
            ),
        ]

    def remove(self) -> None:
        """Take the hooks out (again harmless)."""
        for handle in self.handles:
            handle.remove()
        self.handles = []

    def __exit__(self, *exc: object) -> None:
        self.recorder.when_resumed.clear()
        self.remove()


class _WarningsAsNotes(warnings.catch_warnings):
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
            line = _user_line()
            key = (str(message), line)
            if key in seen or len(seen) >= self.limit:
                return
            seen.add(key)
            where = f" (line {line})" if line is not None else ""
            self.recorder.note(
                "warning" if line is not None else "warningNoLine",
                f"{category.__name__}{where}: {message}",
                category=category.__name__,
                line=line,
                message=_printed(message),
            )

        warnings.showwarning = show


class _QuietChecks:
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
            recorder.note_once(
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


def _error_info(exc: BaseException) -> ErrorInfo:
    line = None
    if isinstance(exc, SyntaxError) and exc.filename == PROGRAM_FILENAME:
        line = exc.lineno
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == PROGRAM_FILENAME:
            line = lineno
    message = _printed(exc.msg if isinstance(exc, SyntaxError) else exc) or type(exc).__name__
    return ErrorInfo(type=type(exc).__name__, message=message[:2000], line=line)


def _printed(value: object) -> str:
    """str(value), or a stand-in when the program's own __str__ fails (as Python prints it)."""
    try:
        text = str(value)
    except Exception:
        return "<exception str() failed>"
    return text if isinstance(text, str) else ""


_OUT_OF_MEMORY = ("can't allocate memory", "out of memory", "not enough memory")


class ProgramExit(Exception):
    """The program ended itself early (exit(), sys.exit()): the recording so far stands."""


def _warm_up_storage_types() -> None:
    # torch.Tensor([...]) as the first tensor of a process trips an internal assert under a
    # TorchFunctionMode; building one before the mode is entered loads what it needs.
    torch.Tensor([0.0])


def record_program(
    execute: Callable[[Recorder], None],
    device: str = "cpu",
    seed: int = 0,
    options: TraceOptions | None = None,
    source: str = "",
) -> Graph:
    """Record the autograd graph and backward passes of a program run by `execute(recorder)`.

    `execute` runs code compiled under PROGRAM_FILENAME whose variable bindings call
    `recorder.bind`. LimitExceeded and DeviceUnavailable end the recording; an exception of the
    program itself is recorded in the Graph with the part recorded before it.
    """
    options = options or TraceOptions()
    target = resolve_device(device)
    label = "cpu" if target.type == "cpu" else f"cuda:{target.index or 0}"
    recorder = Recorder(label, options)
    recorder.source_lines = source.splitlines()
    _warm_up_storage_types()
    with _TRACE_LOCK:
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        with (
            device_context(target),
            _ModuleHooks(recorder),
            _WarningsAsNotes(recorder),
            _QuietChecks(recorder),
            RecordingMode(recorder),
        ):
            _run_program(recorder, execute)
            if recorder.graph.error is None and not recorder.graph.backward:
                _add_implicit_backward(recorder)
    with PausedCollections():  # finishing (the chain rules) allocates as much as recording
        graph = recorder.finish()
    recorder.release()
    return graph


def record_error(exc: BaseException, device: str = "cpu") -> Graph:
    """An empty recording that holds only the program's error (e.g. a SyntaxError)."""
    recorder = Recorder(device, TraceOptions())
    recorder.graph.error = _error_info(exc)
    return recorder.finish()


def _run_program(recorder: Recorder, execute: Callable[[Recorder], None]) -> None:
    try:
        execute(recorder)
    except LimitExceeded:
        raise
    except ProgramExit:
        pass
    except MemoryError:
        raise LimitExceeded("memory", "the program ran out of its memory limit") from None
    except BaseException as exc:  # the program's own failure, KeyboardInterrupt included
        if isinstance(exc, RuntimeError) and any(m in _printed(exc) for m in _OUT_OF_MEMORY):
            raise LimitExceeded("memory", f"the program ran out of memory: {exc}") from None
        recorder.graph.error = _error_info(exc)
        if recorder.recording:
            try:
                recorder.graph.error.node = recorder.add_failed_call(exc)
            except LimitExceeded:
                recorder.hit_node_limit(recorder.graph.error.line)
        failed_pass = recorder.failed_pass
        if failed_pass is not None and failed_pass.error is exc:  # backward() itself raised
            recorder.graph.error.pass_index = failed_pass.index
            recorder.graph.error.roots = failed_pass.roots


def _add_implicit_backward(recorder: Recorder) -> None:
    t = recorder.last_top_tensor
    if not recorder.recording:  # a limit ended the recording: such a pass would show nothing
        return
    if t is None or t.numel() != 1 or not t.requires_grad or t.grad_fn is None:
        return
    recorder.run_pass(torch.Tensor.backward, (t,), {}, added=True)
    name = recorder._bindings.get(id(t), ("the result",))[0]
    recorder.note(
        "implicitBackward",
        f"The program never called backward(); the explorer ran {name}.backward() to show the "
        "backward pass.",
        name=name,
    )


def _name_inputs(recorder: Recorder, names: Mapping[str, torch.Tensor | nn.Module] | None) -> None:
    for name, value in (names or {}).items():
        if isinstance(value, nn.Module):
            recorder._module_names[id(value)] = (name, value)
            for pname, param in value.named_parameters():
                recorder._param_names.setdefault(id(param), f"{name}.{pname}")
        elif isinstance(value, torch.Tensor):
            recorder._bindings[id(value)] = (name, 0, True, value)


def _record_gradient_pass(recorder: Recorder, roots: Iterable[torch.Tensor]) -> None:
    """One pass from the scalar roots through autograd.grad, so no .grad is touched."""
    scalar_roots = [t for t in roots if t.numel() == 1 and t.grad_fn is not None]
    if not scalar_roots:
        return
    for t in scalar_roots:
        recorder.tensor_node(t)
    leaves = list(recorder.leaves_with_accumulators)
    if leaves:
        recorder.run_pass(
            torch.autograd.grad,
            (scalar_roots,),
            {"inputs": leaves, "retain_graph": True, "allow_unused": True},
        )


def trace_tensors(
    *tensors: torch.Tensor,
    names: Mapping[str, torch.Tensor | nn.Module] | None = None,
    backward: bool = True,
    options: TraceOptions | None = None,
) -> Graph:
    """Record the graph behind live tensors; a scalar root's backward leaves .grad untouched."""
    options = options or TraceOptions()
    device = str(tensors[0].device) if tensors else "cpu"
    recorder = Recorder(device, options)
    _name_inputs(recorder, names)
    with _TRACE_LOCK, PausedCollections():
        fns = recorder._reachable([t.grad_fn for t in tensors])
        for fn in sorted(
            (f for f in fns if grad_fn_name(f) != ACCUMULATE_GRAD), key=lambda f: f._sequence_nr()
        ):
            step_index = len(recorder.graph.forward)
            created = recorder.discover([fn], None, None, step_index)
            if not created:
                continue
            head = recorder._op_of_fn[id(fn)]
            outputs = [recorder.tensor_node(t) for t in tensors if t.grad_fn is fn]
            recorder._reconnect_outputs(outputs)
            inputs = recorder.tensor_inputs_of(head)
            op = recorder._nodes_by_id[head]
            name = op.op if isinstance(op, OpNode) else op_name_of(grad_fn_name(fn))
            recorder._add_step(head, [head], name, inputs, outputs, None, None)
        for t in tensors:
            recorder.tensor_node(t)
        if backward:
            _record_gradient_pass(recorder, tensors)
        graph = recorder.finish()
    recorder.release()
    return graph


def trace_callable(
    fn: Callable[..., Any],
    *args: Any,
    names: Mapping[str, torch.Tensor | nn.Module] | None = None,
    backward: bool = True,
    options: TraceOptions | None = None,
    **kwargs: Any,
) -> tuple[Graph, Any]:
    """Run fn(*args, **kwargs) under the recorder (trusted code, no sandbox): (Graph, result).

    Forward calls are recorded with their nn.Module paths; a scalar result's backward pass is
    recorded without touching any .grad.
    """
    options = options or TraceOptions()
    recorder = Recorder("cpu", options)
    _name_inputs(recorder, names)
    with _TRACE_LOCK, FewerCollections():
        with _ModuleHooks(recorder), RecordingMode(recorder):
            result = fn(*args, **kwargs)
        outputs = list(iter_tensors(result))
        if outputs:
            recorder.graph.device = str(outputs[0].device)
        for t in outputs:
            if t.grad_fn is not None and id(t.grad_fn) not in recorder._op_of_fn:
                recorder.record_unseen(t, None)
            recorder.tensor_node(t)
        if backward:
            _record_gradient_pass(recorder, outputs)
        graph = recorder.finish()
    recorder.release()
    return graph, result
