"""A step of the player, written 'forward:N' or 'backward:P:N': parsed and written here only."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

# the JSON contract's shape of a step; parse() also bounds its numbers to nine digits, so that a
# request with a huge one gets BadStep and its message rather than a schema error
STEP_SHAPE = r"^(forward:\d+|backward:\d+:\d+)$"
_STEP = re.compile(r"(forward:\d{1,9}|backward:\d{1,9}:\d{1,9})")


class BadStep(ValueError):
    """A step that is malformed or outside the recording."""


@dataclass(frozen=True)
class PlayerStep:
    """Forward step `index`, or step `index` of backward pass `pass_index` (counted from 0)."""

    phase: Literal["forward", "backward"]
    index: int
    pass_index: int = 0

    @classmethod
    def parse(cls, text: str) -> PlayerStep:
        """The step a text names; BadStep when it names none."""
        if not _STEP.fullmatch(text):
            raise BadStep(f"step must look like forward:N or backward:P:N, not {text!r}")
        phase, *numbers = text.split(":")
        if phase == "forward":
            return cls("forward", int(numbers[0]))
        return cls("backward", int(numbers[1]), int(numbers[0]))

    @staticmethod
    def is_step(text: str) -> bool:
        """Whether a text names a step."""
        return _STEP.fullmatch(text) is not None

    @property
    def backward(self) -> bool:
        """Whether the step plays a backward pass."""
        return self.phase == "backward"

    def __str__(self) -> str:
        if self.phase == "forward":
            return f"forward:{self.index}"
        return f"backward:{self.pass_index}:{self.index}"
