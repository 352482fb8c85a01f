"""A recorded Graph as a networkx DiGraph, and as GraphML, for analysis in Python."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import networkx

    from app.schemas import Graph, TensorData


class NetworkxMissing(ImportError):
    """networkx is not installed: `pip install networkx` (or the package's `networkx` extra)."""


def _networkx() -> Any:
    try:
        import networkx
    except ImportError:
        raise NetworkxMissing(
            "to_networkx() needs networkx: pip install networkx (or autograd-explorer[networkx])"
        ) from None
    return networkx


def _values_text(data: TensorData | None) -> str:
    """A tensor's values (or, above the inline limit, its statistics) as JSON text."""
    if data is None:
        return ""
    if data.values is not None:
        return json.dumps(data.values)
    return json.dumps(data.stats.model_dump() if data.stats else None)


def _attributes(node: Any) -> dict[str, str | int | float | bool]:
    """The node's recorded fields as scalars, the types GraphML can hold (no None)."""
    attrs: dict[str, str | int | float | bool] = {"kind": node.kind, "label": node.label}
    if node.kind == "tensor":
        attrs.update(
            name=node.name or "",
            shape=json.dumps(node.shape),
            dtype=node.dtype,
            device=node.device,
            requires_grad=node.requires_grad,
            is_leaf=node.is_leaf,
            retains_grad=node.retains_grad,
            grad_fn=node.grad_fn or "",
            value=_values_text(node.value),
            grad=_values_text(node.grad),
        )
    else:
        attrs.update(
            op=node.op,
            grad_fn=node.grad_fn or "",
            line=node.line if node.line is not None else -1,
            module=node.module or "",
            sequence_nr=node.sequence_nr if node.sequence_nr is not None else -1,
        )
    return attrs


def to_networkx(graph: Graph) -> networkx.DiGraph:
    """Nodes with their recorded fields, edges in forward data-flow direction, the backward
    passes' engine order as each op node's `backward_order` (its step in the last pass)."""
    nx = _networkx()
    out = nx.DiGraph(device=graph.device, passes=len(graph.backward))
    for node in graph.nodes:
        out.add_node(node.id, **_attributes(node))
    for edge in graph.edges:
        out.add_edge(edge.source, edge.target, id=edge.id)
    if graph.backward:
        for index, step in enumerate(graph.backward[-1].steps):
            if step.node in out:
                out.nodes[step.node]["backward_order"] = index
    return out


def to_graphml(graph: Graph) -> bytes:
    """The graph as GraphML (UTF-8 XML), for Gephi, yEd or networkx.read_graphml."""
    nx = _networkx()
    buffer = io.BytesIO()
    nx.write_graphml(to_networkx(graph), buffer)
    return buffer.getvalue()
