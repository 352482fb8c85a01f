"""records.build gives what model_construct gives: same fields, defaults, serialisation."""

from __future__ import annotations

import pytest

from app.records import build, maker
from app.schemas import BackwardStep, OpNode, Stats, StepRule, TensorData


@pytest.mark.parametrize(
    ("cls", "values"),
    [
        (Stats, {"min": -1.0, "max": 2.0, "mean": 0.5, "std": float("nan")}),
        (TensorData, {"shape": [2], "dtype": "float32", "values": [1.0, 2.0]}),
        (TensorData, {"dtype": "int64", "shape": []}),  # out of declaration order
        (OpNode, {"id": "op0", "label": "mul", "op": "mul", "grad_fn": "MulBackward0"}),
        (BackwardStep, {"node": "op0", "grad_inputs": [None], "grad_outputs": []}),
        (StepRule, {"known": False, "grad_fn": "X", "output": "y", "note": "none"}),
    ],
)
def test_build_equals_model_construct(cls, values) -> None:
    built, constructed = build(cls, **values), cls.model_construct(**values)
    assert built.model_dump_json() == constructed.model_dump_json()
    assert built.model_fields_set == constructed.model_fields_set
    assert built.__pydantic_extra__ is None and built.__pydantic_private__ is None
    assert list(built.__dict__) == list(cls.model_fields)  # fields serialise in this order


def test_default_factories_give_each_instance_its_own_list() -> None:
    a = build(OpNode, id="a", label="a", op="a", grad_fn=None)
    b = build(OpNode, id="b", label="b", op="b", grad_fn=None)
    a.saved.append("x")  # type: ignore[arg-type]
    assert b.saved == []


@pytest.mark.parametrize(
    ("cls", "values"),
    [
        (Stats, {"min": -1.0, "max": 2.0, "mean": 0.5, "std": float("nan")}),
        (
            TensorData,
            {
                "shape": [2],
                "dtype": "float32",
                "values": [1.0, 2.0],
                "stats": None,
                "heatmap": None,
                "histogram": None,
            },
        ),
    ],
)
def test_maker_equals_build_with_every_field(cls, values) -> None:
    made, built = maker(cls)(**values), build(cls, **values)
    assert made.model_dump_json() == built.model_dump_json()
    assert made.model_fields_set == built.model_fields_set == set(cls.model_fields)
    assert made == built and list(made.__dict__) == list(cls.model_fields)
    shuffled = dict(reversed(list(values.items())))  # the declaration order, whatever is given
    assert list(maker(cls)(**shuffled).__dict__) == list(cls.model_fields)


def test_maker_refuses_a_missing_or_unknown_field() -> None:
    make = maker(Stats)
    with pytest.raises(TypeError):
        make(min=1.0, max=2.0, mean=1.5)
    with pytest.raises(TypeError):
        make(min=1.0, max=2.0, mean=1.5, std=0.0, median=1.0)


def test_records_sharing_a_set_of_set_fields_stay_apart_when_one_changes() -> None:
    first = build(Stats, min=1.0, max=2.0, mean=1.5, std=0.5)
    second = maker(Stats)(min=3.0, max=4.0, mean=3.5, std=0.5)
    first.min = -1.0  # pydantic's __setattr__ adds the name to the set of set fields
    assert second.min == 3.0 and first.min == -1.0
    assert second.model_fields_set == first.model_fields_set == set(Stats.model_fields)
