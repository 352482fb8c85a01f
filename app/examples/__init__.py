"""The gallery: one small program per lesson, each with English and Chinese titles and captions."""

from __future__ import annotations

from functools import cache
from importlib import resources

from app.schemas import Example, ExampleSummary

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
DEFAULT_EXAMPLE = "shared_weight"


class UnknownExample(KeyError):
    """No gallery program has that id."""


def _parse(example_id: str, source: str) -> Example:
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
    )


@cache
def all_examples() -> tuple[Example, ...]:
    """Every gallery program, in teaching order."""
    folder = resources.files(__name__)
    return tuple(_parse(i, folder.joinpath(f"{i}.py").read_text(encoding="utf-8")) for i in ORDER)


def summaries() -> list[ExampleSummary]:
    """The gallery without code."""
    return [ExampleSummary(**e.model_dump(exclude={"code"})) for e in all_examples()]


def get_example(example_id: str) -> Example:
    """One program by id; UnknownExample when there is none."""
    for example in all_examples():
        if example.id == example_id:
            return example
    raise UnknownExample(example_id)
