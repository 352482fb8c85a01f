"""The torch call or backward pass that raised, kept in case its error ends the program."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from app.recorder.autograd_facts import call_name_of, iter_tensors, number_reprs
from app.recorder.graph_builder import GraphBuilder
from app.recorder.source import user_line
from app.records import build
from app.schemas import OpNode


@dataclass
class FailedCall:
    """A torch call that raised while recording, kept in case its error ends the program."""

    error: BaseException
    name: str
    inputs: list[torch.Tensor]
    numbers: list[str]
    line: int | None
    module: str | None

    @classmethod
    def of(
        cls,
        exc: BaseException,
        func: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        module: str | None,
    ) -> FailedCall:
        """The call func(*args, **kwargs) that raised exc."""
        return cls(
            exc,
            call_name_of(func),
            list(iter_tensors((args, kwargs))),
            number_reprs(args),
            user_line(),
            module,
        )

    def add_ghost(self, builder: GraphBuilder) -> tuple[str, list[str]]:
        """A ghost op node, with edges from its inputs, for this call: its id and its inputs."""
        input_ids = list(dict.fromkeys(builder.tensor_node(t) for t in self.inputs))
        node_id = f"op{builder.op_count()}"  # nothing is recorded after it
        builder.add_node(
            build(
                OpNode,
                id=node_id,
                kind="op",
                label=self.name,
                op=self.name,
                grad_fn=None,
                line=self.line,
                module=self.module,
                call=len(builder.graph.forward),
                sequence_nr=None,
                variable=None,
                created_by_pass=None,
                saved=[],
                next=[],
                constants=self.numbers,
                failed=True,
            )
        )
        for tid in input_ids:
            builder.add_edge(tid, node_id)
        return node_id, input_ids


@dataclass
class FailedPass:
    """A backward()/autograd.grad() call that raised, kept in case its error ends the program."""

    error: BaseException
    index: int
    roots: list[str]
