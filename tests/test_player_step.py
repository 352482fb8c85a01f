"""The player's step, parsed and written in one place."""

from __future__ import annotations

import pytest

from app.player_step import BadStep, PlayerStep


@pytest.mark.parametrize(
    ("text", "step"),
    [
        ("forward:0", PlayerStep("forward", 0)),
        ("forward:12", PlayerStep("forward", 12)),
        ("backward:0:3", PlayerStep("backward", 3, 0)),
        ("backward:2:0", PlayerStep("backward", 0, 2)),
    ],
)
def test_a_step_reads_and_writes_back_the_same_text(text: str, step: PlayerStep) -> None:
    assert PlayerStep.parse(text) == step
    assert str(step) == text
    assert PlayerStep.is_step(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "forward",
        "forward:",
        "forward:1:2",
        "backward:1",
        "back:1:2",
        "forward:-1",
        "forward:1234567890",
        " forward:1",
        "forward:1\n",
    ],
)
def test_anything_else_is_a_bad_step(text: str) -> None:
    assert not PlayerStep.is_step(text)
    with pytest.raises(BadStep, match="forward:N or backward:P:N"):
        PlayerStep.parse(text)
