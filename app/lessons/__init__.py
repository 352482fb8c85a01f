"""The gallery: one small program per lesson, each with English and Chinese titles and captions."""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable

from app.player_step import PlayerStep
from app.schemas import Caption, Example, ExampleSummary

HEADER_KEYS = ("title", "title_zh", "lesson", "lesson_zh")
ORDER = (
    "linear_expression",
    "shared_weight",
    "retain_grad",
    "second_derivative",
    "grad_accumulation",
    "inplace_leaf_error",
    "implicit_backward",
    "linear_regression",
    "logistic_regression",
    "two_layer_relu",
    "custom_function",
    "dynamic_net",
    "mlp_cross_entropy",
    "transformer_encoder",
)
DEFAULT_LESSON = "shared_weight"


class UnknownLesson(KeyError):
    """No gallery program has that id."""


def _captions(folder: Traversable, example_id: str) -> dict[str, Caption]:
    """The narration of a lesson, from narration/<id>.json when it has one."""
    path = folder.joinpath("narration", f"{example_id}.json")
    if not path.is_file():
        return {}
    raw = json.loads(path.read_text(encoding="utf-8"))
    bad = [key for key in raw if not PlayerStep.is_step(key)]
    if bad:
        raise ValueError(f"narration of {example_id} has keys that name no step: {bad}")
    return {key: Caption(**value) for key, value in raw.items()}


def _parse(example_id: str, source: str, captions: dict[str, Caption] | None = None) -> Example:
    header: dict[str, str] = {}
    body: list[str] = []
    for line in source.splitlines(keepends=True):
        key, sep, value = line.removeprefix("# ").partition(": ")
        if not body and line.startswith("# ") and sep and key in HEADER_KEYS:
            header[key] = value.strip()
        else:
            body.append(line)
    return Example(
        id=example_id,
        title_en=header["title"],
        title_zh=header["title_zh"],
        lesson=header.get("lesson", ""),
        lesson_zh=header.get("lesson_zh", ""),
        code="".join(body).lstrip("\n"),
        captions=captions or {},
    )


@cache
def all_lessons() -> tuple[Example, ...]:
    """Every gallery program, in teaching order."""
    folder = resources.files(__name__)
    return tuple(
        _parse(i, folder.joinpath(f"{i}.py").read_text(encoding="utf-8"), _captions(folder, i))
        for i in ORDER
    )


def summaries() -> list[ExampleSummary]:
    """The gallery without code."""
    return [ExampleSummary(**e.model_dump(exclude={"code", "captions"})) for e in all_lessons()]


def get_lesson(example_id: str) -> Example:
    """One program by id; UnknownLesson when there is none."""
    for example in all_lessons():
        if example.id == example_id:
            return example
    raise UnknownLesson(example_id)
