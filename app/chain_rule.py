"""Attach to each recorded backward step why its gradients have their values (the chain rule)."""

from __future__ import annotations

import re
import warnings

from app.graph_index import index_of
from app.graph_notes import add_note
from app.local_rules import RULES
from app.records import maker
from app.rule_text import rule_message
from app.schemas import (
    Accumulation,
    BackwardPass,
    BackwardStep,
    GradientMeet,
    GradientPart,
    Graph,
    NoteMessage,
    OpNode,
    RuleTerm,
    SavedTensor,
    StepRule,
    TensorData,
    TensorNode,
)
from app.step_view import (
    TEXT_LIMIT,
    StepView,
    ValueCache,
    bracketed_shape,
    linked_data,
)

# records made by the thousand: every field by keyword, nothing checked
new_gradient_meet = maker(GradientMeet)
new_accumulation = maker(Accumulation)
new_step_rule = maker(StepRule)
new_gradient_part = maker(GradientPart)

ACCUMULATE_GRAD = "AccumulateGrad"
MAX_EXPLAINED_STEPS = 20_000  # bounds the work and the JSON that rules add to big runs
_PLAIN_NAME = re.compile(r"[\w.]+(\[[^\]\s]*\])*ᵀ?(#\d+)?")  # 'w', 'model.0.weight', 'x[0]'


def rule_name(label: str) -> str:
    """A node's label as a name inside a formula: an expression label ('x * w') in brackets."""
    return label if _PLAIN_NAME.fullmatch(label) else f"({label})"


# (output name, tensor node per input slot, name per input slot, op's part of the rule key)
_OpFacts = tuple[str, list[str | None], list[str | None], tuple[object, ...] | None]


class _RuleNames:
    """The names a graph's rules read: each op's slots, saved tensors and plain inputs."""

    def __init__(self, graph: Graph) -> None:
        index = index_of(graph)
        self.nodes: dict[str, TensorNode | OpNode] = index.nodes
        self.outputs: dict[str, list[str]] = index.outputs
        self.between: dict[tuple[str, str], str] = index.between
        self.plain_inputs: dict[str, list[str]] = {}
        for op, tensors in index.inputs.items():
            for tensor in tensors:
                node = self.nodes[tensor]
                if isinstance(node, TensorNode) and not node.requires_grad:
                    self.plain_inputs.setdefault(op, []).append(rule_name(node.label))
        self._facts: dict[str, _OpFacts] = {}
        self._saved: dict[str, dict[str, SavedTensor]] = {}
        self._made: dict[str, str | None] = {}
        self._names: dict[str, str] = {}  # rule_name by label
        self.unknown: dict[str, NoteMessage] = {}  # the note of each grad_fn without a rule
        self.values = ValueCache()
        # (known, expression, terms, note) of the rules made, by what they read (see _rule_key)
        self.rules_made: dict[
            tuple[object, ...], tuple[bool, str | None, list[RuleTerm], NoteMessage | None]
        ] = {}

    def saved(self, op: OpNode) -> dict[str, SavedTensor]:
        """op's saved tensors and attributes by name, gathered once."""
        known = self._saved.get(op.id)
        if known is None:
            known = self._saved[op.id] = {s.name: s for s in op.saved}
        return known

    def facts(self, op: OpNode) -> _OpFacts:
        """(output name, tensor node per input slot, name per input slot) of op and the part
        of its rule key read off op itself, read once: every step of a recording reads them."""
        known = self._facts.get(op.id)
        if known is not None:
            return known
        tensors: list[str | None] = []
        labels: list[str | None] = []
        for producer in op.next:
            tensor = None if producer is None else self._carried(producer, op.id)
            tensors.append(tensor)
            labels.append(self._named(tensor, producer))
        output = self.output_name(op)
        known = (output, tensors, labels, self._op_key(op, output, tensors, labels))
        self._facts[op.id] = known
        return known

    def _op_key(
        self, op: OpNode, output: str, tensors: list[str | None], labels: list[str | None]
    ) -> tuple[object, ...] | None:
        saved: list[tuple[object, ...]] = []
        for item in op.saved:
            label, data = linked_data(item, self.nodes)  # what StepView.saved_data gives
            if data is None:
                saved.append((item.name, label, None, item.repr))
            elif data.values is None:
                saved.append((item.name, label, tuple(data.shape), item.repr))
            else:
                return None
        return (
            op.grad_fn,
            op.op,
            output,
            tuple(tensors),
            tuple(labels),  # None exactly where op.next is: which slots get a gradient
            tuple(op.constants),
            tuple(self.plain_inputs.get(op.id, ())),
            tuple(saved),
        )

    def name_of(self, label: str) -> str:
        """rule_name(label), made once per label."""
        name = self._names.get(label)
        if name is None:
            name = self._names[label] = rule_name(label)
        return name

    def output_name(self, op: OpNode) -> str:
        """Name of what op computed: its output tensor's label, or, when that tensor is not
        drawn, a name made from its input ('wᵀ') or the label of the op's own box."""
        if op.variable is not None:
            return self.name_of(self.nodes[op.variable].label)
        for tensor in self.outputs.get(op.id, []):
            node = self.nodes[tensor]
            if isinstance(node, TensorNode) and not node.is_leaf:
                return self.name_of(node.label)
        if op.grad_fn == "TBackward0" and op.next and op.next[0] is not None:
            return f"{self.slot_label(op, 0)}ᵀ"
        return self.name_of(op.label)

    def slot_label(self, op: OpNode, slot: int) -> str | None:
        """The name of input slot: its tensor's label, else one made from its producer."""
        producer = op.next[slot] if slot < len(op.next) else None
        tensor = None if producer is None else self._carried(producer, op.id)
        return self._named(tensor, producer)

    def _carried(self, producer: str, op_id: str) -> str | None:
        """The tensor node that carried producer's output into op, when one was recorded."""
        source = self.nodes.get(producer)
        if isinstance(source, OpNode) and source.variable is not None:
            return source.variable
        return self.between.get((producer, op_id))

    def _named(self, tensor: str | None, producer: str | None) -> str | None:
        """The name of a slot: its tensor's label, else one made from its producer."""
        if tensor is not None:
            return self.name_of(self.nodes[tensor].label)
        return self._made_label(producer)

    def _made_label(self, producer: str | None) -> str | None:
        """A name for the output of producer that the graph does not draw, made once: its
        input's name transposed ('xᵀ'), else the label of producer's box ('LogSoftmax')."""
        if producer is None:
            return None
        if producer in self._made:
            return self._made[producer]
        node = self.nodes.get(producer)
        label = None
        if isinstance(node, OpNode):
            if node.grad_fn == "TBackward0" and node.next and node.next[0] is not None:
                label = f"{self.slot_label(node, 0)}ᵀ"
            else:
                label = self.name_of(node.label)
        self._made[producer] = label
        return label


def _data_text(values: ValueCache, data: TensorData, small: bool) -> str:
    t = values.tensor(data) if small else None
    return values.text(t, data.shape) if t is not None else bracketed_shape(data.shape)


def _is_small(*items: TensorData | None) -> bool:
    return all(
        d is not None and d.values is not None and len(_flat(d.values)) <= TEXT_LIMIT for d in items
    )


def _flat(values: object) -> list[object]:
    stack, out = [values], []
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        else:
            out.append(item)
    return out


def _meet(values: ValueCache, parts: list[GradientPart], total: TensorData) -> GradientMeet:
    small = _is_small(total, *(p.value for p in parts))
    text = " + ".join(_data_text(values, p.value, small) for p in parts)
    total_text = _data_text(values, total, small)
    return new_gradient_meet(parts=parts, total=total, text=f"{text} = {total_text}")


def _accumulation(
    values: ValueCache, op: OpNode, step: BackwardStep, record: BackwardPass, name: str
) -> Accumulation | None:
    """leaf.grad before + added = after; None when no gradient arrived (a custom backward
    may return None for an input)."""
    added = step.grad_outputs[0] if step.grad_outputs else None
    if added is None:
        return None
    after = record.grads.get(op.variable or "")
    before = step.grad_before
    small = _is_small(*(d for d in (added, after, before) if d is not None))
    before_text = _data_text(values, before, small) if before is not None else "None"
    after_text = _data_text(values, after, small) if after is not None else "None"
    added_text = _data_text(values, added, small) if added is not None else "None"
    return new_accumulation(
        leaf=op.variable or "",
        name=name,
        before=before,
        added=added,
        after=after,
        text=f"{name}.grad = {before_text} + {added_text} = {after_text}",
    )


def _shapes(items: list[TensorData | None]) -> tuple[tuple[int, ...] | None, ...] | None:
    """The shape of each item (None for a missing one); None when one holds values."""
    shapes: list[tuple[int, ...] | None] = []
    for data in items:
        if data is None:
            shapes.append(None)
        elif data.values is None:
            shapes.append(tuple(data.shape))
        else:
            return None
    return tuple(shapes)


def _rule_key(index: _RuleNames, op: OpNode, step: BackwardStep) -> tuple[object, ...] | None:
    """Everything a rule reads of a step (through StepView) when none of its tensors is small
    enough to be recorded with values, so that no rule computes with numbers: steps with the
    same key get the same rule, made once. None when a value is recorded. (The op's part of
    the key, from index.facts, holds its output's and its slots' names.)"""
    grads_in = _shapes(step.grad_inputs)
    if grads_in is None:
        return None
    grads_out = _shapes(step.grad_outputs)
    if grads_out is None:
        return None
    op_key = index.facts(op)[3]
    return None if op_key is None else (op_key, grads_in, grads_out)


def explain_step(
    index: _RuleNames, op: OpNode, step: BackwardStep, record: BackwardPass
) -> StepRule:
    """The rule of one step: a known formula with terms, an accumulation, or a note."""
    grad_fn = op.grad_fn or op.op
    output, slot_tensors, slot_labels, _ = index.facts(op)
    if grad_fn == ACCUMULATE_GRAD:
        return new_step_rule(
            known=True,
            grad_fn=grad_fn,
            output=output,
            expression=f"{output}.grad += grad_{output}",
            terms=[],
            meet=None,
            accumulate=_accumulation(index.values, op, step, record, output),
            note=None,
            message=None,
        )
    rule = RULES.get(grad_fn)
    if rule is None:  # nothing of the step is read: one note per grad_fn
        unknown = index.unknown.get(grad_fn)
        if unknown is None:
            unknown = index.unknown[grad_fn] = rule_message("unknown", fn=grad_fn)
        return new_step_rule(
            known=False,
            grad_fn=grad_fn,
            output=output,
            expression=None,
            terms=[],
            meet=None,
            accumulate=None,
            note=unknown.text,
            message=unknown,
        )
    key = _rule_key(index, op, step)
    known_rule = index.rules_made.get(key) if key is not None else None
    if known_rule is not None:
        known, expression, terms, message = known_rule
        return new_step_rule(
            known=known,
            grad_fn=grad_fn,
            output=output,
            expression=expression,
            terms=list(terms),
            meet=None,
            accumulate=None,
            note=message.text if message else None,
            message=message,
        )
    message: NoteMessage | None = None
    view = StepView(
        op=op,
        step=step,
        nodes=index.nodes,
        slot_tensors=slot_tensors,
        slot_labels=slot_labels,
        output=output,
        plain_inputs=list(index.plain_inputs.get(op.id, [])),
        saved_by_name=index.saved(op),
        values=index.values,
    )
    expression: str | None
    terms: list[RuleTerm]
    try:
        expression, terms = rule(view)
    except (ArithmeticError, AttributeError, LookupError, RuntimeError, TypeError, ValueError):
        expression, terms = None, []
        message = rule_message("notApplied", fn=grad_fn)
    expression = _without_restatement(expression, output)
    known = message is None
    if key is not None:
        index.rules_made[key] = (known, expression, terms, message)
    return new_step_rule(
        known=known,
        grad_fn=grad_fn,
        output=output,
        expression=expression,
        terms=terms,
        meet=None,
        accumulate=None,
        note=message.text if message else None,
        message=message,
    )


def _without_restatement(expression: str | None, output: str) -> str | None:
    """'x * w' rather than '(x*w) = x * w' for a tensor labelled by its own expression, and
    'wᵀ' rather than 'wᵀ = wᵀ'."""
    if expression is None:
        return None
    head, _, rest = expression.partition(" = ")
    bare = output[1:-1] if output.startswith("(") and output.endswith(")") else output
    if head == output and "".join(rest.split()) == "".join(bare.split()):
        return rest
    return expression


def attach_rules(graph: Graph) -> Graph:
    """Give every backward step of graph its StepRule, and the sum where gradients meet."""
    if not graph.backward:
        return graph
    index = _RuleNames(graph)
    budget = MAX_EXPLAINED_STEPS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the rules' arithmetic on recorded values is not news
        for record in graph.backward:
            if len(record.steps) > budget:
                text = f"Chain rules are shown for the first {MAX_EXPLAINED_STEPS} backward steps."
                add_note(graph, "rulesCapped", text, n=MAX_EXPLAINED_STEPS)
                break
            budget -= len(record.steps)
            _explain_pass(index, record)
    return graph


def _explain_pass(index: _RuleNames, record: BackwardPass) -> None:
    """Rules of one pass, in the engine's order, collecting what each step sent to its inputs."""
    sent: dict[str, list[tuple[str, TensorData]]] = {}  # (sending op, gradient) per receiver
    nodes = index.nodes
    for step in record.steps:
        node = step.node
        op = nodes.get(node)
        if not isinstance(op, OpNode):
            continue
        rule = explain_step(index, op, step, record)
        parts = sent.get(node)
        if parts is not None and len(parts) >= 2 and len(step.grad_outputs) == 1:
            total = step.grad_outputs[0]
            if total is not None:  # every field of rule is already set
                rule.__dict__["meet"] = _meet(
                    index.values,
                    [new_gradient_part(source=source, value=value) for source, value in parts],
                    total,
                )
        step.__dict__["rule"] = rule  # built with rule=None: the field counts as set
        grads = step.grad_inputs
        for producer, grad in zip(op.next, grads, strict=False):  # past grads: nothing sent
            if producer is not None and grad is not None:
                receiving = sent.get(producer)
                if receiving is None:
                    sent[producer] = [(node, grad)]
                else:
                    receiving.append((node, grad))
