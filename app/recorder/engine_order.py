"""The order the CPU autograd engine runs a graph's nodes in, worked out without running it:
a node is ready once every edge into it has run, and of the ready nodes the one made last (the
highest sequence number; AccumulateGrad above all) runs first."""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from typing import Any

from app.recorder.autograd_facts import SEQUENCE_NR_MAX


def engine_order(roots: list[Any], reachable: Iterable[Any], inputs: set[int]) -> list[Any]:
    """The nodes torch.autograd.grad(roots' outputs, inputs) runs, in the engine's order, for
    a graph on the CPU: only nodes with a path to an input run; the inputs' own
    AccumulateGrad nodes (ids in inputs) take their gradient without running."""
    nodes = list(reachable)
    producers: dict[int, list[Any]] = {}
    waiting: dict[int, int] = {}  # edges into each node not yet run
    consumers: dict[int, list[Any]] = {}
    for fn in nodes:
        found = producers[id(fn)] = [p for p, _ in fn.next_functions if p is not None]
        for producer in found:
            key = id(producer)
            waiting[key] = waiting.get(key, 0) + 1
            users = consumers.get(key)
            if users is None:
                consumers[key] = [fn]
            else:
                users.append(fn)
    needed: set[int] = set()
    stack = [fn for fn in nodes if id(fn) in inputs]
    while stack:  # every node on a path to an input runs
        for consumer in consumers.get(id(stack.pop()), ()):
            if id(consumer) not in needed:
                needed.add(id(consumer))
                stack.append(consumer)
    ready: list[tuple[int, int, Any]] = []
    order: list[Any] = []
    arrived = [*roots]  # the engine's own root node hands each root its gradient first
    for root in roots:
        waiting[id(root)] = waiting.get(id(root), 0) + 1
    count = 0
    while True:
        for fn in arrived:
            left = waiting[id(fn)] = waiting[id(fn)] - 1
            if left == 0 and id(fn) in needed:
                count += 1  # ties (only AccumulateGrad) in arrival order
                heapq.heappush(ready, (-min(fn._sequence_nr(), SEQUENCE_NR_MAX), count, fn))
        if not ready:
            return order
        fn = heapq.heappop(ready)[2]
        order.append(fn)
        arrived = producers[id(fn)]
