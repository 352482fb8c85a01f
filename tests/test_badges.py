"""Badge texts: one rule for the page and the exports, equal to the recorded gradients."""

from __future__ import annotations

import pytest

from app.badges import (
    BADGE_PARTS,
    MAX_BADGE_CHARS,
    MAX_BADGE_LINE,
    badge_lines,
    badge_track,
    badges_at,
    data_text,
    widest_badges,
)
from app.lessons import get_lesson
from app.schemas import BadgeSize, TensorData
from app.tracing import trace_code
from tests.conftest import tensor_named


@pytest.fixture(scope="module")
def shared():
    return trace_code(get_lesson("shared_weight").code)


def test_w_shows_both_contributions_meeting_and_its_grad(shared) -> None:
    track = badge_track(shared)
    w = tensor_named(shared, "w").id
    last = len(shared.backward[0].steps) - 1
    text = badges_at(track, "backward", 0, last)[w]
    # its value over its gradient, the gradient broken before its sum and its .grad
    assert text == "= [1.]\n∂ [3.] + [2.]\n= [5.]\n→ .grad [5.]"
    assert badge_lines(text) == ["= [1.]", "∂ [3.] + [2.]", "= [5.]", "→ .grad [5.]"]


def test_leaves_show_their_values_from_the_first_step(shared) -> None:
    track = badge_track(shared)
    first = shared.forward[0]
    texts = badges_at(track, "forward", 0, 0)
    leaves = {n.id for n in shared.nodes if n.kind == "tensor" and n.is_leaf}
    assert set(texts) == set(first.outputs) | leaves
    assert texts[tensor_named(shared, "w").id] == "= [1.]"
    assert texts[tensor_named(shared, "x").id] == "= [2.]"
    assert all(text.startswith("= ") for text in texts.values())


def test_values_stay_once_computed_so_a_reader_sees_y_equals_a_times_b(shared) -> None:
    track = badge_track(shared)
    last = len(shared.forward) - 1
    texts = badges_at(track, "forward", 0, last)
    named = {name: texts[tensor_named(shared, name).id] for name in ("a", "b", "y")}
    assert named == {"a": "= [3.]", "b": "= [2.]", "y": "= [6.]"}
    for i in range(last):  # every later step shows at least what an earlier one showed
        assert set(badges_at(track, "forward", 0, i)) <= set(badges_at(track, "forward", 0, i + 1))


def test_every_step_before_the_end_is_a_prefix_of_later_badges(shared) -> None:
    track = badge_track(shared)
    steps = len(shared.backward[0].steps)
    shown = [set(badges_at(track, "backward", 0, i)) for i in range(steps)]
    assert all(a <= b for a, b in zip(shown, shown[1:], strict=False))


def test_long_vectors_are_cut_and_one_value_prints_plain() -> None:
    data = TensorData(shape=[5], dtype="float32", values=[1.5, 2, 3, 4, 5])
    assert data_text(data) == "[1.5000, 2.0000, …]"  # as many as fit one badge line
    assert data_text(TensorData(shape=[], dtype="float32", values=138.83378601074219)) == "138.8338"


def test_the_call_that_raised_carries_its_error_on_lines_that_fit() -> None:
    code = (
        "import torch\nx = torch.randn(3, 4, requires_grad=True)\n"
        "w = torch.randn(5, 2, requires_grad=True)\ny = (x * 2) @ w\n"
    )
    graph = trace_code(code)
    track = badge_track(graph)
    text = track.forward[-1][graph.error.node]
    lines = badge_lines(text)
    assert lines[0] == "✗ RuntimeError"
    assert " ".join(lines[1:]) == graph.error.message  # torch's words, whole
    assert all(len(line) <= MAX_BADGE_LINE for line in lines)


def used_n_times(n: int) -> str:
    return (
        "import torch\nx = torch.tensor([1.0, 2.0], requires_grad=True)\n"
        f"y = sum(x * i for i in range({n}))\ny.sum().backward()\n"
    )


def test_badges_grow_linearly_with_the_gradients_that_meet() -> None:
    """x receives one gradient per use: its badge names the first few and counts the rest, so
    the badges of every step together grow with the steps, not with their square."""
    sizes = {}
    for n in (50, 200):
        track = badge_track(trace_code(used_n_times(n)))
        sizes[n] = len(track.model_dump_json())
        assert all(
            len(text) <= MAX_BADGE_CHARS for step in track.backward[0] for text in step.values()
        )
    assert sizes[200] / sizes[50] < 4.5, sizes  # four times the steps; the square would be 16


def test_more_gradients_than_shown_are_counted() -> None:
    graph = trace_code(used_n_times(6))
    x = tensor_named(graph, "x").id
    track = badge_track(graph)
    last = len(track.backward[0]) - 1
    text = badges_at(track, "backward", 0, last)[x]
    assert text.count(" + ") == BADGE_PARTS - 1 and f"… {6 - (BADGE_PARTS - 1)} more" in text
    assert text.endswith("→ .grad [15., 15.]")  # 0 + 1 + ... + 5, as torch sums it


def test_the_track_carries_each_node_widest_badge_for_the_page(shared) -> None:
    track = badge_track(shared)
    w = tensor_named(shared, "w").id
    # "∂ [3.] + [2.]" is its widest line; its value over its three gradient lines: four lines
    assert track.sizes[w] == BadgeSize(chars=13, lines=4)
    assert {node: (s.chars, s.lines) for node, s in track.sizes.items()} == widest_badges(track)
    for node, size in track.sizes.items():  # no step shows a badge wider or taller than this
        for step in range(len(shared.backward[0].steps)):
            lines = badge_lines(badges_at(track, "backward", 0, step).get(node, ""))
            assert len(lines) <= size.lines and max(map(len, lines)) <= size.chars


def test_every_text_arrives_on_the_lines_it_is_drawn_on() -> None:
    """The page splits a badge at its newlines alone: the server has broken every long line."""
    graph = trace_code(used_n_times(6))
    track = badge_track(graph)
    texts = [text for step in track.forward for text in step.values()]
    texts += [text for steps in track.backward for step in steps for text in step.values()]
    assert any(text.count("\n") >= 2 for text in texts)  # a sum of parts, then its .grad
    assert all(badge_lines(text) == text.split("\n") for text in texts)
