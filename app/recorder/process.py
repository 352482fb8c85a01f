"""Process-wide state around recordings: one recording at a time, garbage collection paused
while records are built, and deep graphs held until they can be freed safely."""

from __future__ import annotations

import gc
import threading
from typing import Any

from app.recorder.autograd_facts import SEQUENCE_NR_MAX

TRACE_LOCK = threading.RLock()  # module hooks and the default device are process-wide


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


def _release_order(fn: Any) -> int:
    """AccumulateGrad first, then the autograd nodes in the order they were made."""
    seq = fn._sequence_nr()
    return -1 if seq >= SEQUENCE_NR_MAX else seq


# Autograd nodes a finished recording still wraps. Once Python has wrapped the nodes of a deep
# chain (50,000 ops), torch tearing the chain down from its output recurses once per node and
# overflows the stack (SIGSEGV), even after the wrappers are gone. Held here until the
# program's own references are gone, the wrappers are the chain's last owners: dropped from
# the output back to the leaves, each frees one node and nothing below it.
_HELD_NODES: list[Any] = []
DEEP_GRAPH_NODES = 5_000  # below this many wrapped nodes a graph is freed at once
_HELD_LOCK = threading.Lock()


def hold_nodes(fns: list[Any]) -> None:
    """Keep the autograd nodes of a finished recording for release_held_graphs(), when the
    graph is deep enough for its teardown to matter."""
    if len(fns) < DEEP_GRAPH_NODES:
        return  # torch frees a graph this shallow from any end
    with _HELD_LOCK:
        _HELD_NODES.extend(fns)


def release_held_graphs() -> None:
    """Free the autograd nodes of finished recordings, from the outputs back to the leaves.
    Call it once the program's variables are gone (or before the next recording)."""
    with _HELD_LOCK:
        fns = _HELD_NODES[:]
        _HELD_NODES.clear()
    fns.sort(key=_release_order)
    while fns:
        fns.pop()  # the newest node first: the output end of the chain
