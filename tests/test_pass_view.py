"""The pass a step belongs to, and the part of the graph one pass draws."""

from __future__ import annotations

from app.pass_view import pass_of_step, pass_subgraph, splits_by_pass
from app.tracing import trace_code

TWO_PASSES = """import torch
w = torch.ones(2, requires_grad=True)
for i in range(2):
    loss = (w * 3).sum()
    loss.backward()
"""


def test_a_step_names_the_pass_it_plays() -> None:
    graph = trace_code(TWO_PASSES)
    assert graph.error is None, graph.error
    assert splits_by_pass(graph) and len(graph.backward) == 2
    assert pass_of_step("backward:0:1", graph) == 0
    assert pass_of_step("backward:1:0", graph) == 1
    first = [i for i, step in enumerate(graph.forward) if step.after_pass == 0]
    second = [i for i, step in enumerate(graph.forward) if step.after_pass == 1]
    assert first and second
    assert {pass_of_step(f"forward:{i}", graph) for i in first} == {0}
    assert {pass_of_step(f"forward:{i}", graph) for i in second} == {1}
    # no step, a text that names none, or a step past the recording: the last pass
    for step in (None, "", "sideways:1", f"forward:{len(graph.forward)}"):
        assert pass_of_step(step, graph) == 1


def test_one_pass_is_cut_out_of_a_loop() -> None:
    graph = trace_code(TWO_PASSES)
    parts = [pass_subgraph(graph, index) for index in range(2)]
    assert all(len(part.nodes) < len(graph.nodes) for part in parts)
    assert {n.id for n in parts[0].nodes} != {n.id for n in parts[1].nodes}
