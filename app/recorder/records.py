"""Records the recorder makes once per autograd node, built from their fields by position."""

from __future__ import annotations

from app.records import maker
from app.schemas import BackwardStep, Edge, ForwardStep, OpNode, SavedTensor

# (id, source, target)
edge_record = maker(Edge, positional=True)
# (id, kind, label, op, grad_fn, line, module, call, sequence_nr, variable, created_by_pass,
#  saved, constants, next, failed, look)
op_record = maker(OpNode, positional=True)
# (node, nodes, call, inputs, outputs, line, module, after_pass)
forward_step_record = maker(ForwardStep, positional=True)
# (node, grad_inputs, grad_outputs, grad_before, rule)
backward_step_record = maker(BackwardStep, positional=True)
# (name, tensor, value, repr)
saved_tensor_record = maker(SavedTensor, positional=True)
