"""The recorded graph's nodes and edges: one tensor node per tensor in each autograd role,
one op node per autograd node, found by walking grad_fn."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from app.errors import LimitExceeded
from app.recorder.autograd_facts import (
    SEQUENCE_NR_MAX,
    NodeKind,
    dense_for_summary,
    node_kind,
    shape_of,
)
from app.recorder.naming import Names
from app.recorder.options import TraceOptions
from app.recorder.records import edge_record, forward_step_record, op_record
from app.recorder.saved import SavedValues, TensorMemory
from app.recorder.source import ProgramSource, shorten
from app.records import maker
from app.schemas import (
    Graph,
    OpNode,
    SavedTensor,
    TensorData,
    TensorNode,
    tensor_look,
)
from app.tensor_summary import SummaryBatch, dtype_name

# records made by the thousand: every field by keyword, nothing checked
new_tensor_node = maker(TensorNode)
new_tensor_data = maker(TensorData)


def _tensor_key(t: torch.Tensor) -> tuple[Any, ...]:
    """A tensor's autograd role: a leaf by identity, an output by its node and output number."""
    fn = t.grad_fn
    if fn is None:
        return ("leaf", id(t))
    return ("out", id(fn), t.output_nr)


def _shape_only(t: torch.Tensor, preview: bool = True) -> TensorData:
    """A tensor's shape and dtype, without its values (a recording of the structure alone)."""
    return new_tensor_data(
        shape=shape_of(t),
        dtype=dtype_name(t.dtype),
        values=None,
        stats=None,
        heatmap=None,
        histogram=None,
    )


def _op_record(
    node_id: str,
    kind: NodeKind,
    seq: int,
    line: int | None,
    module: str | None,
    call: int | None,
    created_by_pass: int | None,
    saved: list[SavedTensor],
) -> OpNode:
    """The op node of an autograd node of that kind and sequence number."""
    return op_record(
        node_id,
        "op",
        kind.op,  # label
        kind.op,
        kind.name,  # grad_fn
        line,
        module,
        call,
        seq if seq < SEQUENCE_NR_MAX else None,  # sequence_nr
        None,  # variable
        created_by_pass,
        saved,
        [],  # constants
        [],  # next
        False,  # failed
        "acc" if kind.accumulates else "op",  # look
    )


def _tensor_record(
    node_id: str,
    t: torch.Tensor,
    label: str,
    name: str | None,
    line: int | None,
    fn_name: str | None,
    expression: str | None,
    value: TensorData,
) -> TensorNode:
    """The tensor node of t."""
    is_parameter = isinstance(t, nn.Parameter)
    return new_tensor_node(
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
        is_parameter=is_parameter,
        grad_fn=fn_name,
        version=t._version,
        value=value,
        grad=None,
        expression=expression,
        look=tensor_look(t.is_leaf, t.requires_grad, is_parameter),
    )


class GraphNodes:
    """Adds nodes and edges to a Graph, each once, and keeps the tensors and autograd nodes
    they stand for alive (and their ids stable) while recording."""

    def __init__(
        self, graph: Graph, options: TraceOptions, names: Names, source: ProgramSource
    ) -> None:
        self.graph = graph
        self.options = options
        self.names = names
        self.source = source
        self.summaries = SummaryBatch(options.inline_limit)
        self.leaves_with_accumulators: list[torch.Tensor] = []  # in the order their nodes came
        self._fn_refs: list[Any] = []  # keeps node ids stable while recording
        self._op_of_fn: dict[int, str] = {}
        self._leaf_of_op: dict[str, str] = {}  # AccumulateGrad node -> its leaf's tensor node
        self._tensor_of_key: dict[tuple[Any, ...], str] = {}
        self._key_of_tensor: dict[str, tuple[Any, ...]] = {}
        self._tensor_refs: dict[str, torch.Tensor] = {}
        self._latest_node_of_obj: dict[int, str] = {}
        self._memory = TensorMemory()
        self._nodes_by_id: dict[str, TensorNode | OpNode] = {}
        self._edge_keys: set[tuple[str, str]] = set()
        self._incoming: dict[str, list[str]] = {}
        self._saved = SavedValues(options.max_saved_repr)

    # ----- looking up ------------------------------------------------------------------

    def knows(self, fn: Any) -> bool:
        """Whether autograd node fn has its op node."""
        return id(fn) in self._op_of_fn

    def op_of(self, fn: Any) -> str:
        """The op node of a known autograd node."""
        return self._op_of_fn[id(fn)]

    def unknown(self, fns: Iterable[Any]) -> list[Any]:
        """The autograd nodes of fns that have no op node yet."""
        op_of_fn = self._op_of_fn
        return [fn for fn in fns if id(fn) not in op_of_fn]

    def ops_of(self, fns: Iterable[Any]) -> list[str]:
        """The op nodes of known autograd nodes, in their order."""
        op_of_fn = self._op_of_fn
        return [op_of_fn[id(fn)] for fn in fns]

    def leaves_of_ops(self) -> Mapping[str, str]:
        """AccumulateGrad op node -> its leaf's tensor node, of every one so far (read only)."""
        return MappingProxyType(self._leaf_of_op)

    def leaf_of_op(self, op_id: str) -> str | None:
        """The leaf's tensor node of an AccumulateGrad op node; None for any other node."""
        return self._leaf_of_op.get(op_id)

    def node(self, node_id: str) -> TensorNode | OpNode:
        """The node with that id."""
        return self._nodes_by_id[node_id]

    def tensor(self, node_id: str) -> torch.Tensor:
        """The tensor a tensor node stands for."""
        return self._tensor_refs[node_id]

    def op_count(self) -> int:
        """How many op nodes there are."""
        return len(self._op_of_fn)

    def holds(self, t: torch.Tensor) -> str | None:
        """The node of t when t's latest node stands for this very tensor."""
        node_id = self._latest_node_of_obj.get(id(t))
        if node_id is not None and self._tensor_refs.get(node_id) is t:
            return node_id
        return None

    def tensors(self) -> Iterator[tuple[TensorNode | OpNode, torch.Tensor]]:
        """(node, tensor) of every tensor node, in the order they were made."""
        for node_id, t in self._tensor_refs.items():
            yield self._nodes_by_id[node_id], t

    def latest_tensors(self) -> Iterator[tuple[TensorNode, torch.Tensor]]:
        """(node, tensor) of every tensor's latest tensor node."""
        for node_id, t in self._tensor_refs.items():
            node = self._nodes_by_id[node_id]
            if isinstance(node, TensorNode) and self._latest_node_of_obj.get(id(t)) == node_id:
                yield node, t

    def output_tensors(self) -> Iterator[tuple[str, int, int]]:
        """(tensor node, id of its autograd node, output number) of every output tensor."""
        for tensor_id, key in self._key_of_tensor.items():
            if key[0] == "out":
                yield tensor_id, key[1], key[2]

    def op_of_id(self, fn_id: int) -> str | None:
        """The op node of the autograd node with that id, if known."""
        return self._op_of_fn.get(fn_id)

    def keep(self, fns: Iterable[Any]) -> None:
        """Keep autograd nodes alive while recording (their ids are used as keys)."""
        self._fn_refs.extend(fns)

    # ----- nodes and edges -------------------------------------------------------------

    def _check_room(self) -> None:
        """LimitExceeded once the graph holds max_nodes."""
        if len(self._nodes_by_id) >= self.options.max_nodes:
            raise LimitExceeded(
                "nodes",
                f"the graph has more than {self.options.max_nodes} nodes; "
                "record a smaller model or fewer iterations",
            )

    def add_node(self, node: TensorNode | OpNode) -> None:
        """Add a node; LimitExceeded once the graph holds max_nodes."""
        self._check_room()
        self.graph.nodes.append(node)
        self._nodes_by_id[node.id] = node

    def add_edge(self, source: str, target: str) -> None:
        """Add an edge once (never a loop)."""
        if (source, target) in self._edge_keys or source == target:
            return
        self._edge_keys.add((source, target))
        self._incoming.setdefault(target, []).append(source)
        self.graph.edges.append(edge_record(f"e{len(self.graph.edges)}", source, target))

    def summary(self, t: torch.Tensor, preview: bool = True) -> TensorData:
        """The statistics (and preview) of t, filled in at the next flush; its shape alone in a
        recording of the structure alone. (A method, not a bound method kept on the builder,
        which would hold it in a reference cycle.)"""
        if not self.options.values:
            return _shape_only(t)
        if t.layout is not torch.strided or t.is_nested:
            t = dense_for_summary(t)
        return self.summaries.add(t, preview)

    def tensor_node(
        self, t: torch.Tensor, op_label: str | None = None, expression: str | None = None
    ) -> str:
        """Id of the node for tensor t in its current autograd role, creating it when new; an
        unnamed output is labelled by the source expression that made it, when known."""
        key = _tensor_key(t)
        node_id = self._tensor_of_key.get(key)
        if node_id is not None:
            return node_id
        node_id = f"t{len(self._tensor_of_key)}"
        name, line = self.names.name_for(t)
        fn = t.grad_fn
        kind = node_kind(fn) if fn is not None else None
        fn_name = kind.name if kind is not None else None
        if fn is None:
            made = self.source.constant_expression(t)
            if made is not None:  # an unnamed constant: its source text
                expression, made_line = made
                line = line if name is not None else made_line
        if name is not None:
            label = name
        elif expression is not None:
            label = shorten(expression)
        elif kind is not None:
            label = f"{op_label or kind.op}_out"
        else:
            label = "param" if isinstance(t, nn.Parameter) else "leaf"
        node = _tensor_record(node_id, t, label, name, line, fn_name, expression, self.summary(t))
        self.add_node(node)
        self._tensor_of_key[key] = node_id
        self._key_of_tensor[node_id] = key
        self._tensor_refs[node_id] = t
        self._latest_node_of_obj[id(t)] = node_id
        if self.options.values:  # only saved tensors, recorded with values, are matched by it
            self._memory.remember(t, node_id)
        if fn is not None:
            self._fn_refs.append(fn)
        return node_id

    def _new_op_node(
        self,
        fn: Any,
        line: int | None,
        module: str | None,
        call: int | None,
        created_by_pass: int | None,
    ) -> str:
        """The op node of an autograd node not seen before, with its saved tensors."""
        kind = node_kind(fn)
        self._check_room()
        node_id = f"op{len(self._op_of_fn)}"
        seq = fn._sequence_nr()
        accumulates = kind.accumulates
        saved = (  # saved values are values: a structure-only graph has none
            self._saved.of(fn, self._match_tensor, self.summary, kind.saved)
            if self.options.values and not accumulates
            else []
        )
        node = _op_record(node_id, kind, seq, line, module, call, created_by_pass, saved)
        self.graph.nodes.append(node)
        self._nodes_by_id[node_id] = node
        self._op_of_fn[id(fn)] = node_id
        self._fn_refs.append(fn)
        if accumulates:
            leaf = fn.variable
            self.leaves_with_accumulators.append(leaf)
            leaf_id = self.tensor_node(leaf)
            node.__dict__["variable"] = leaf_id
            self._leaf_of_op[node_id] = leaf_id
            node.__dict__["label"] = f"AccumulateGrad({self._nodes_by_id[leaf_id].label})"
            self.add_edge(node_id, leaf_id)
        return node_id

    def _match_tensor(self, t: torch.Tensor) -> str | None:
        node_id = self._latest_node_of_obj.get(id(t))
        if node_id is not None and self._tensor_refs.get(node_id) is t:  # holds(t), inlined
            return node_id
        fn = t.grad_fn
        if fn is not None:
            return self._tensor_of_key.get(("out", id(fn), t.output_nr))
        return self._memory.node_of(t)


class GraphBuilder(GraphNodes):
    """GraphNodes that finds op nodes by walking grad_fn from the autograd nodes it is given."""

    def discover(
        self,
        fns: Iterable[Any],
        line: int | None,
        module: str | None,
        call: int | None,
        created_by_pass: int | None = None,
    ) -> list[str]:
        """Op nodes for every not-yet-seen autograd node reachable from fns, with their edges."""
        op_of_fn, new_op = self._op_of_fn, self._new_op_node
        stack = [fn for fn in fns if fn is not None and id(fn) not in op_of_fn]
        created = [op_of_fn.get(id(fn)) or new_op(fn, line, module, call, None) for fn in stack]
        if stack:
            self._walk(stack, created, line, module, call, created_by_pass)
        return created

    def _walk(
        self,
        stack: list[Any],
        created: list[str],
        line: int | None,
        module: str | None,
        call: int | None,
        created_by_pass: int | None,
    ) -> None:
        """Link each node of stack to its producers, making (and walking on from) the new ones."""
        op_of_fn, link = self._op_of_fn, self._link_producers
        while stack:
            fn = stack.pop()
            new: list[Any] = []
            link(fn, op_of_fn[id(fn)], line, module, call, created_by_pass, new)
            for producer in new:
                created.append(op_of_fn[id(producer)])
                stack.append(producer)

    def _link_producers(
        self,
        fn: Any,
        target: str,
        line: int | None,
        module: str | None,
        call: int | None,
        created_by_pass: int | None,
        new: list[Any],
    ) -> list[str]:
        """Link autograd node fn's op node target to its producers' op nodes, made for the
        new ones (appended to new, to walk on from, but for leaves' AccumulateGrad): target's
        next, and an edge from each producer's output tensor where it has a node (its leaf's
        for an AccumulateGrad). The tensor sources of target's edges added, in order."""
        op_of_fn, new_op = self._op_of_fn, self._new_op_node
        leaf_of_op, tensor_of_key = self._leaf_of_op, self._tensor_of_key
        add_edge, edge_keys = self.add_edge, self._edge_keys
        next_ops: list[str | None] = []
        self._nodes_by_id[target].__dict__["next"] = next_ops  # no pydantic __setattr__ here
        inputs: list[str] = []
        for producer, output_nr in fn.next_functions:
            if producer is None:
                next_ops.append(None)
                continue
            source = op_of_fn.get(id(producer))
            if source is None:  # new: its node, and a walk on from it
                source = new_op(producer, line, module, call, created_by_pass)
                if source not in leaf_of_op:
                    new.append(producer)
            next_ops.append(source)
            tensor_id = leaf_of_op.get(source)  # a leaf's gradient: the edge runs from the leaf
            if tensor_id is None:
                tensor_id = tensor_of_key.get(("out", id(producer), output_nr))
                if tensor_id is not None:
                    add_edge(source, tensor_id)
            if tensor_id is not None:
                source = tensor_id
                if (source, target) not in edge_keys:
                    inputs.append(source)
            add_edge(source, target)
        return inputs

    def record_in_sequence(
        self, ops: list[Any], made_by: dict[int, list[torch.Tensor]], after_pass: int
    ) -> None:
        """For each autograd node of ops (in the order torch made them) not seen yet: its op
        node and edges, the tensor nodes of the tensors in made_by it output, and its forward
        step, as discover, tensor_node, reconnect_outputs and tensor_inputs_of give them,
        in one loop. Producers made out of order are walked by _walk."""
        op_of_fn, forward = self._op_of_fn, self.graph.forward
        new_op, link, walk = self._new_op_node, self._link_producers, self._walk
        for fn in ops:
            if id(fn) in op_of_fn:
                continue  # found by an earlier walk (made out of sequence order)
            call = len(forward)
            head = new_op(fn, None, None, call, None)
            later: list[Any] = []  # producers new here: walked once head's edges are in
            inputs = link(fn, head, None, None, call, None, later)  # tensor_inputs_of(head)
            if later:
                walk(later, [], None, None, call, None)
            made = made_by.get(id(fn))
            outputs = [self.tensor_node(t) for t in made] if made else []
            if outputs:
                self.reconnect_outputs(outputs)
            op = node_kind(fn).op
            forward.append(
                forward_step_record(head, [head], op, inputs, outputs, None, None, after_pass)
            )

    def tensor_inputs_of(self, op_id: str) -> list[str]:
        """Tensor nodes with an edge into op_id."""
        return [s for s in self._incoming.get(op_id, []) if self._nodes_by_id[s].kind == "tensor"]

    def reconnect_outputs(self, tensor_ids: list[str]) -> None:
        """Route producer->consumer edges through a tensor node created after its consumers."""
        for tensor_id in tensor_ids:
            key = self._key_of_tensor[tensor_id]
            if key[0] != "out":
                continue
            producer_op = self._op_of_fn.get(key[1])
            if producer_op is not None:
                self.add_edge(producer_op, tensor_id)

    def release(self) -> list[Any]:
        """Drop the hold on the program's tensors; the autograd nodes held, to free with care."""
        self.leaves_with_accumulators = []
        self._tensor_refs = {}
        fns, self._fn_refs = self._fn_refs, []
        return fns
