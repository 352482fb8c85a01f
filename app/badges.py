"""The text beside each node at every player step, computed once for the page and the exports."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.graph_index import index_of
from app.schemas import BadgeSize, BadgeTrack, Graph, OpNode, TensorData, TensorNode
from app.torch_print import torch_value_texts

BADGE_ITEMS = 3  # values shown in a badge before "…"
MAX_BADGE_LINE = 26  # characters; longer badges break before " = " and " → ", here only
ERROR_BADGE_CHARS = 60  # the error message under the call that raised, shortened
BADGE_PARTS = 4  # gradients shown where they meet; more are counted, not written
MAX_BADGE_CHARS = 240  # a badge is cut here: each is bounded, so all of them are linear


def flat_values(values: Any) -> list[Any]:
    """Nested values in row-major order, walked without recursion."""
    flat: list[Any] = []
    stack: list[Any] = [values]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        else:
            flat.append(item)
    return flat


def is_floating(dtype: str) -> bool:
    """Whether torch prints this dtype with a decimal point."""
    return any(word in dtype for word in ("float", "double", "half", "complex"))


def data_text(data: TensorData | None, items: int = BADGE_ITEMS) -> str:
    """Short text of recorded values: a number, a few values, or mean and std."""
    if data is None:
        return "None"
    if data.values is not None:
        if not isinstance(data.values, list):
            return torch_value_texts([data.values], is_floating(data.dtype))[0]
        flat = flat_values(data.values)
        if not flat:
            return "[]"
        # as many values as fit one badge line after its "= " or "∂ ", at least one
        for count in range(min(items, len(flat)), 0, -1):
            shown = torch_value_texts(flat, is_floating(data.dtype), count)
            text = f"[{', '.join(shown)}{', …' if len(flat) > count else ''}]"
            if len(text) <= MAX_BADGE_LINE - 2 or count == 1:
                return text
    if data.stats is not None:
        mean, std = torch_value_texts([data.stats.mean, data.stats.std])
        return f"μ {mean} σ {std}"
    return "×".join(map(str, data.shape))


@dataclass
class _Arrival:
    """The gradient met at one tensor so far in a pass."""

    parts: list[TensorData] = field(default_factory=list)
    total: TensorData | None = None
    accumulated: TensorData | None = None
    leaf: bool = False

    def text(self, text_of: Callable[[TensorData | None], str] = data_text) -> str:
        """The badge: its parts (the first few, then how many more), their sum, .grad."""
        count = len(self.parts)
        shown = self.parts if count <= BADGE_PARTS else self.parts[: BADGE_PARTS - 1]
        parts = [text_of(p) for p in shown]
        if count > len(shown):
            parts.append(f"… {count - len(shown)} more")
        total = text_of(self.total) if self.total is not None else None
        if len(parts) > 1:
            body = " + ".join(parts) + (f" = {total}" if total else "")
        else:
            body = total or (parts[0] if parts else "")
        if self.leaf:
            body += f" → .grad {text_of(self.accumulated)}"
        return _on_lines(_clip(f"∂ {body}"))


def _clip(text: str) -> str:
    return text if len(text) <= MAX_BADGE_CHARS else text[: MAX_BADGE_CHARS - 1] + "…"


def _on_lines(text: str) -> str:
    """The text with a line break wherever it is drawn on a new line: the page splits at them."""
    return "\n".join(badge_lines(text))


class _TextMemo:
    """data_text of each TensorData, written once however many badges repeat it."""

    def __init__(self) -> None:
        self._texts: dict[int, tuple[TensorData | None, str]] = {}

    def __call__(self, data: TensorData | None) -> str:
        known = self._texts.get(id(data))
        if known is not None and known[0] is data:
            return known[1]
        text = data_text(data)
        self._texts[id(data)] = (data, text)  # holds data, so its id is not reused meanwhile
        return text


def badge_track(graph: Graph) -> BadgeTrack:
    """Badge texts: each forward step's outputs (the first step's also the leaves'), and each
    backward step's changed gradients."""
    index = index_of(graph)
    by_id = index.nodes
    text_of = _TextMemo()
    forward = []
    computed = {tensor for step in graph.forward for tensor in step.outputs}
    for tensor in index.made_by:  # made by an op (a gradient's graph too): shown once it is made
        if index.computing_op(tensor) is not None:
            computed.add(tensor)
    for step in graph.forward:
        texts = {}
        if not forward:  # leaves and constants are there from the start
            for node in graph.nodes:
                if isinstance(node, TensorNode) and node.id not in computed:
                    texts[node.id] = _on_lines(f"= {text_of(node.value)}")
        for tensor in step.outputs:
            node = by_id.get(tensor)
            if isinstance(node, TensorNode):
                texts[tensor] = _on_lines(_clip(f"= {text_of(node.value)}"))
        if graph.error is not None and graph.error.node == step.node:  # the call that raised
            message = " ".join(graph.error.message.split())
            if len(message) > ERROR_BADGE_CHARS:
                message = message[: ERROR_BADGE_CHARS - 1] + "…"
            lines = [f"✗ {graph.error.type}", *textwrap.wrap(message, MAX_BADGE_LINE)]
            texts[step.node] = "\n".join(lines)
        forward.append(texts)
    between = index.between
    outputs_of: dict[str, dict[str, None]] = {}  # op -> its output tensors, in order, once
    for (op, _), tensor in between.items():
        outputs_of.setdefault(op, {})[tensor] = None
    for op, tensors in index.outputs.items():  # outputs nobody consumed (the loss) too
        for tensor in tensors:
            outputs_of.setdefault(op, {})[tensor] = None
    backward = []
    for record in graph.backward:
        arrivals: dict[str, _Arrival] = {}
        steps = []
        for index, step in enumerate(record.steps):
            touched: list[str] = []
            if index == 0:
                for root in record.root:
                    if root in record.tensor_grads:
                        arrivals[root] = _Arrival(total=record.tensor_grads[root])
                        touched.append(root)
            op = by_id.get(step.node)
            if not isinstance(op, OpNode):
                steps.append({})
                continue
            for k, producer in enumerate(op.next):
                grad = step.grad_inputs[k] if k < len(step.grad_inputs) else None
                if producer is None or grad is None:
                    continue
                source = by_id.get(producer)
                if isinstance(source, OpNode) and source.variable:
                    tensor: str | None = source.variable
                else:
                    tensor = between.get((producer, step.node))
                if tensor is not None:
                    arrivals.setdefault(tensor, _Arrival()).parts.append(grad)
                    touched.append(tensor)
            for tensor in outputs_of.get(step.node, {}):
                arrival = arrivals.setdefault(tensor, _Arrival())
                arrival.total = record.tensor_grads.get(tensor, arrival.total)
                touched.append(tensor)
            if op.variable is not None:
                arrival = arrivals.setdefault(op.variable, _Arrival())
                if step.grad_outputs and step.grad_outputs[0] is not None:
                    arrival.total = step.grad_outputs[0]
                arrival.accumulated = record.grads.get(op.variable)
                arrival.leaf = True
                touched.append(op.variable)
            if index == len(record.steps) - 1:  # autograd.grad's results, once the pass is done
                for tensor, data in record.results.items():
                    arrivals.setdefault(tensor, _Arrival()).total = data
                    touched.append(tensor)
            steps.append(
                {tensor: arrivals[tensor].text(text_of) for tensor in dict.fromkeys(touched)}
            )
        backward.append(steps)
    track = BadgeTrack(forward=forward, backward=backward)
    track.sizes = {
        node: BadgeSize(chars=chars, lines=lines)
        for node, (chars, lines) in widest_badges(track).items()
    }
    return track


def values_at(track: BadgeTrack, index: int) -> dict[str, str]:
    """Node id -> value text of each tensor made by forward step index, leaves from the start."""
    shown: dict[str, str] = {}
    for texts in track.forward[: index + 1]:
        shown.update(texts)
    return shown


def with_gradients(values: dict[str, str], gradients: dict[str, str]) -> dict[str, str]:
    """Each node's value line with its gradient lines under it, where it has both."""
    shown = dict(values)
    for node, text in gradients.items():
        value = values.get(node)
        shown[node] = f"{value}\n{text}" if value and text.startswith("∂") else text
    return shown


def badges_at(track: BadgeTrack, phase: str, pass_index: int, index: int) -> dict[str, str]:
    """Node id -> badge text at one player position (what the page shows there).

    A tensor keeps its value once computed; going backward, its gradient shows under it."""
    if phase == "forward":
        return values_at(track, index)
    gradients: dict[str, str] = {}
    for texts in track.backward[pass_index][: index + 1]:
        gradients.update(texts)
    return with_gradients(values_at(track, len(track.forward) - 1), gradients)


def badge_lines(text: str) -> list[str]:
    """The lines a badge is drawn on: short ones whole, long ones broken before '=' and '→'."""
    lines: list[str] = []
    for line in text.split("\n"):  # a value over its gradient, or an error message
        lines.extend([line] if len(line) <= MAX_BADGE_LINE else re.split(r" (?=[=→] )", line))
    return lines


def _backward_steps(track: BadgeTrack) -> list[dict[str, str]]:
    return [texts for record in track.backward for texts in record]


def widest_badges(track: BadgeTrack) -> dict[str, tuple[int, int]]:
    """Node id -> (most characters on one line, most lines) over every step's badge.

    A value and a gradient are drawn one under the other, so their lines add up."""
    values: dict[str, tuple[int, int]] = {}
    gradients: dict[str, tuple[int, int]] = {}
    for target, steps in ((values, track.forward), (gradients, _backward_steps(track))):
        for texts in steps:
            for node, text in texts.items():
                lines = badge_lines(text)
                chars, count = target.get(node, (0, 0))
                target[node] = (max(chars, *(len(line) for line in lines)), max(count, len(lines)))
    widest = dict(values)
    for node, (chars, count) in gradients.items():
        value_chars, value_lines = values.get(node, (0, 0))
        widest[node] = (max(chars, value_chars), count + value_lines)
    return widest
