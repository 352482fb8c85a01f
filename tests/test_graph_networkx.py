"""The Graph as a networkx DiGraph and as GraphML."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import networkx as nx
import pytest

from app.cli import main
from app.tracing import trace_code

PROGRAM = (
    "import torch\nw = torch.tensor([1.0], requires_grad=True)\nx = torch.tensor([2.0], "
    "requires_grad=True)\na = w + x\nb = w + 1\ny = a * b\ny.backward()\n"
)


def test_to_networkx_keeps_nodes_edges_and_gradients() -> None:
    graph = trace_code(PROGRAM)
    g = graph.to_networkx()
    assert isinstance(g, nx.DiGraph)
    assert set(g.nodes) == {n.id for n in graph.nodes}
    assert {(e.source, e.target) for e in graph.edges} == set(g.edges)
    (w,) = [n for n, d in g.nodes(data=True) if d.get("name") == "w"]
    assert json.loads(g.nodes[w]["grad"]) == [5.0] and g.nodes[w]["is_leaf"] is True
    (y,) = [n for n, d in g.nodes(data=True) if d.get("name") == "y"]
    assert nx.has_path(g, w, y)  # forward data flow: from the leaf to the loss
    mul = next(n for n, d in g.nodes(data=True) if d.get("grad_fn") == "MulBackward0")
    assert g.nodes[mul]["backward_order"] == 0  # the engine ran the loss's node first
    assert nx.is_directed_acyclic_graph(g)


def test_cli_writes_graphml_that_networkx_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    program = tmp_path / "p.py"
    program.write_text(PROGRAM)
    out = io.BytesIO()

    class Stdout:
        buffer = out

        def flush(self) -> None:
            pass

        def write(self, text: str) -> int:
            return out.write(text.encode())

    monkeypatch.setattr(sys, "stdout", Stdout())
    assert main(["trace", str(program), "--format", "graphml"]) == 0
    g = nx.read_graphml(io.BytesIO(out.getvalue()))
    assert len(g.nodes) == len(trace_code(PROGRAM).nodes)
    (w,) = [n for n, d in g.nodes(data=True) if d.get("name") == "w"]
    assert json.loads(g.nodes[w]["grad"]) == [5.0]
