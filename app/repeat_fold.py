"""Fold what repeats: sibling groups of one structure become one box 'name × N'.

Works on the group each node belongs to (app.layout_groups.node_groups), after recording: the
calls of one module (`cell`, `cell#2`, ...), the members of a module list (`layers.0`,
`layers.1`, ...) and the iterations of a loop whose calls are grouped by their source line
(`line:9`)."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from app.schemas import Graph, OpNode, TensorNode

FOLD_PREFIX = "fold:"
MIN_REPEATS = 3  # two calls stay two boxes: a lesson's `block`, `block#2` read better apart
# a lesson's three calls of one small layer stay apart: its point is the weight they share
MIN_FOLD_NODES = 48
_CALL = re.compile(r"^(.*)#(\d+)$")  # 'block#2': the second call of `block`


@dataclass(frozen=True)
class Folds:
    """Which groups are folded together: fold id -> its members in order, and back."""

    members: dict[str, tuple[str, ...]] = field(default_factory=dict)
    fold_of: dict[str, str] = field(default_factory=dict)

    def parent(self, path: str) -> str | None:
        """The group that holds a group: its fold, else its module parent (None: top level)."""
        fold = self.fold_of.get(path)
        if fold is not None:
            return fold
        if path.startswith(FOLD_PREFIX):  # a name asked for may fold nothing in this graph
            members = self.members.get(path)
            return structural_parent(members[0]) if members else None
        return structural_parent(path)

    def lineage(self, path: str) -> list[str]:
        """Every group around a node at path, outermost first, path itself last."""
        chain: list[str] = []
        current: str | None = path
        while current is not None:
            chain.append(current)
            current = self.parent(current)
        chain.reverse()
        return chain


NO_FOLDS = Folds()


def structural_parent(path: str) -> str | None:
    """The module that holds a module path ('layers.3' -> 'layers'); line groups are top level."""
    if path.startswith("line:"):
        return None
    return path.rsplit(".", 1)[0] if "." in path else None


def is_fold(path: str | None) -> bool:
    """Whether a group path is a fold of repeats."""
    return bool(path) and path.startswith(FOLD_PREFIX)


def _sibling_key(path: str) -> tuple[str | None, str, int] | None:
    """(parent, name without its index, index) of a numbered module or a repeated call."""
    parent = structural_parent(path)
    name = path.rsplit(".", 1)[-1]
    call = _CALL.match(name)
    if call:
        return parent, call[1], int(call[2])
    if name.isdigit():
        return parent, "<n>", int(name)
    return parent, name, 1  # the first call of a module carries no number


def _module_signatures(graph: Graph, paths: set[str]) -> dict[str, tuple[tuple[str, str], ...]]:
    """Per module path: every module below it (relative path, class and sizes), itself too."""
    found: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for path in paths:
        if path.startswith("line:"):
            continue
        what = graph.modules.get(path, "")
        parts = path.split(".")
        for i in range(1, len(parts) + 1):
            top = ".".join(parts[:i])
            found[top].add((".".join(parts[i:]), what))
    return {path: tuple(sorted(entries)) for path, entries in found.items()}


def _all_paths(groups: dict[str, str | None]) -> set[str]:
    paths: set[str] = set()
    for path in set(groups.values()):
        while path:
            paths.add(path)
            path = structural_parent(path)
    return paths


def find_folds(graph: Graph, groups: dict[str, str | None]) -> Folds:
    """Runs of at least MIN_REPEATS sibling groups with the same structure: the calls of one
    module, the numbered members of a module list, the iterations of one loop line."""
    paths = _all_paths(groups)
    signature = _module_signatures(graph, paths)
    siblings: dict[tuple[str | None, str], list[tuple[int, str]]] = defaultdict(list)
    for path in paths:
        key = _sibling_key(path)
        if key is not None:
            siblings[key[:2]].append((key[2], path))
    members: dict[str, tuple[str, ...]] = {}
    for group in siblings.values():
        if len(group) < MIN_REPEATS:
            continue
        group.sort()
        run: list[str] = []
        last_index: int | None = None
        for index, path in group:
            same = run and signature.get(path) == signature.get(run[0])
            if same and last_index is not None and index == last_index + 1:
                run.append(path)
            else:
                _keep(run, members)
                run = [path]
            last_index = index
        _keep(run, members)
    fold_of = {member: fold for fold, paths_ in members.items() for member in paths_}
    return Folds(members, fold_of)


def _keep(run: list[str], members: dict[str, tuple[str, ...]]) -> None:
    if len(run) >= MIN_REPEATS:
        members[FOLD_PREFIX + run[0]] = tuple(run)


def _period(calls: list[str]) -> int | None:
    """The shortest number of calls after which the sequence repeats, at least MIN_REPEATS
    times over; None when it does not."""
    total = len(calls)
    for period in range(1, total // MIN_REPEATS + 1):
        if total % period == 0 and all(calls[i] == calls[i - period] for i in range(period, total)):
            return period
    return None


def split_loop_lines(graph: Graph, groups: dict[str, str | None]) -> dict[str, str | None]:
    """Line groups whose calls repeat one loop body, cut into a group per iteration
    ('line:9#1', 'line:9#2', ...); the lines of one loop body run in turn are cut together
    ('line:5-6#1': lines 5 and 6 of the first iteration). What several iterations share (the
    loop's weights) goes to the fold around them ('fold:line:9')."""
    calls: dict[str, list[tuple[int, list[str]]]] = defaultdict(list)
    names: dict[str, list[str]] = defaultdict(list)
    for position, step in enumerate(graph.forward):
        group = groups.get(step.node)
        if group and group.startswith("line:"):
            calls[group].append((position, [step.node, *step.nodes]))
            names[group].append(step.call)
    iteration: dict[str, list[int]] = {}  # line -> the iteration of each of its calls
    for line in calls:
        period = _period(names[line])
        if period is not None:
            iteration[line] = [i // period + 1 for i in range(len(calls[line]))]
    moved: dict[str, str] = {}
    fold_of_line: dict[str, str] = {}
    for lines in _loop_bodies(calls, iteration):
        body = "line:" + "-".join(line[5:] for line in lines)
        for line in lines:
            fold_of_line[line] = f"{FOLD_PREFIX}{body}"
            for (_, nodes), number in zip(calls[line], iteration[line], strict=True):
                for node in nodes:
                    if groups.get(node) == line:
                        moved[node] = f"{body}#{number}"
    if not moved:
        return groups
    result = dict(groups)
    result.update(moved)
    _place_tensors(graph, groups, result, fold_of_line)
    return result


def _loop_bodies(
    calls: dict[str, list[tuple[int, list[str]]]], iteration: dict[str, list[int]]
) -> list[list[str]]:
    """The repeating lines put together by the loop they run in: lines of as many iterations,
    whose calls overlap in time, and whose calls of each iteration come before the next's (a
    loop over lines 5 and 6). Lines that do not interleave so stay loops of their own."""
    spans = {line: (calls[line][0][0], calls[line][-1][0]) for line in iteration}
    bodies: list[list[str]] = []
    for line in sorted(iteration, key=lambda found: spans[found]):
        last = bodies[-1] if bodies else None
        if (
            last is not None
            and iteration[last[0]][-1] == iteration[line][-1]
            and spans[line][0] <= max(spans[other][1] for other in last)
            and _in_turn([*last, line], calls, iteration)
        ):
            last.append(line)
        else:
            bodies.append([line])
    return [sorted(body, key=_line_number) for body in bodies]


def _in_turn(
    lines: list[str],
    calls: dict[str, list[tuple[int, list[str]]]],
    iteration: dict[str, list[int]],
) -> bool:
    """Whether, in the order the calls ran, no call of an iteration comes after one of the next."""
    order = sorted(
        (position, number)
        for line in lines
        for (position, _), number in zip(calls[line], iteration[line], strict=True)
    )
    return all(a[1] <= b[1] for a, b in zip(order, order[1:], strict=False))


def _line_number(line: str) -> int:
    return int(line[5:]) if line[5:].isdigit() else 0


def _place_tensors(
    graph: Graph,
    before: dict[str, str | None],
    after: dict[str, str | None],
    fold_of_line: dict[str, str],
) -> None:
    """Tensors (and a leaf's AccumulateGrad) of a split line go with the iteration that made
    them, else the one iteration that reads them, else the fold around the iterations."""
    by_id = {n.id: n for n in graph.nodes}
    producer: dict[str, str] = {}
    readers: dict[str, set[str | None]] = defaultdict(set)
    for edge in graph.edges:
        source, target = by_id[edge.source], by_id[edge.target]
        if isinstance(source, OpNode) and isinstance(target, TensorNode):
            if source.variable != target.id:
                producer.setdefault(target.id, source.id)
        elif isinstance(source, TensorNode) and isinstance(target, OpNode):
            readers[source.id].add(after.get(target.id))
    for node in graph.nodes:
        line = before.get(node.id)
        if not isinstance(node, TensorNode) or line not in fold_of_line:
            continue
        if node.id in producer and after.get(producer[node.id]) != line:
            after[node.id] = after[producer[node.id]]
        elif len(readers[node.id]) == 1:
            after[node.id] = next(iter(readers[node.id]))
        else:
            after[node.id] = fold_of_line[line]
    for node in graph.nodes:
        if (
            isinstance(node, OpNode)
            and node.variable is not None
            and before.get(node.id) in (fold_of_line)
        ):
            after[node.id] = after.get(node.variable)


def line_folds(groups: dict[str, str | None]) -> dict[str, tuple[str, ...]]:
    """The folds of split loop lines: 'fold:line:9' -> ('line:9#1', 'line:9#2', ...)."""
    iterations: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for path in set(groups.values()):
        if path and path.startswith("line:"):
            call = _CALL.match(path)
            if call:
                iterations[call[1]].append((int(call[2]), path))
    return {
        f"{FOLD_PREFIX}{line}": tuple(path for _, path in sorted(found))
        for line, found in iterations.items()
    }


def fold_groups(graph: Graph, groups: dict[str, str | None]) -> tuple[dict[str, str | None], Folds]:
    """The groups with loop lines cut into iterations, and every fold of repeats among them."""
    split = split_loop_lines(graph, groups)
    size = _sizes(split)
    lines = {
        f: m for f, m in line_folds(split).items() if sum(size[p] for p in m) >= MIN_FOLD_NODES
    }
    if len(lines) < len(line_folds(split)):  # a small loop keeps its line groups whole
        kept = {m for members in lines.values() for m in members} | set(lines)
        split = {
            k: v if v is None or v in kept or not _is_line(v) else groups[k]
            for k, v in split.items()
        }
    groups = split
    modules = find_folds(graph, {k: v for k, v in groups.items() if not _is_line(v)})
    members = {
        fold: paths
        for fold, paths in modules.members.items()
        if sum(size[p] for p in paths) >= MIN_FOLD_NODES
    }
    members.update(lines)
    fold_of = {member: fold for fold, paths in members.items() for member in paths}
    return groups, Folds(members, fold_of)


def _sizes(groups: dict[str, str | None]) -> dict[str, int]:
    """Nodes inside each group path, those of its sub-modules too."""
    size: dict[str, int] = defaultdict(int)
    for path in groups.values():
        while path:
            size[path] += 1
            path = structural_parent(path)
    return size


def _is_line(path: str | None) -> bool:
    return bool(path) and (path.startswith("line:") or path.startswith(FOLD_PREFIX + "line:"))


def fold_title(graph: Graph, fold: str, folds: Folds) -> str:
    """'encoder.layers × 48', 'cell × 50', 'line 9 × 50': the name of what repeats and how often."""
    members = folds.members[fold]
    first = members[0]
    count = len(members)
    if first.startswith("line:"):
        return f"line {first[5:].split('#')[0]} × {count}"
    shown = graph.module_paths.get(first, first)
    call = _CALL.match(shown)
    if call:
        shown = call[1]
    elif shown.rsplit(".", 1)[-1].isdigit() and "." in shown:
        shown = shown.rsplit(".", 1)[0]
    what = graph.modules.get(first)
    return f"{shown} × {count}" + (f" · {what}" if what else "")
