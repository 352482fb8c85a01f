"""The records the recorder builds by position equal the same records built and checked by
pydantic, field for field and in their JSON."""

from __future__ import annotations

from app.recorder.records import (
    backward_step_record,
    edge_record,
    forward_step_record,
    op_record,
    saved_tensor_record,
)
from app.schemas import BackwardStep, Edge, ForwardStep, OpNode, SavedTensor, TensorData


def _same(made: object, checked: object) -> None:
    assert type(made) is type(checked)
    assert made == checked
    assert made.model_dump_json() == checked.model_dump_json()  # type: ignore[attr-defined]
    assert made.model_fields_set == checked.model_fields_set  # type: ignore[attr-defined]


def test_an_edge_by_position() -> None:
    _same(edge_record("e3", "t1", "op2"), Edge(id="e3", source="t1", target="op2"))


def test_an_op_node_by_position() -> None:
    made = op_record(
        "op4",
        "op",
        "mul",
        "mul",
        "MulBackward0",
        3,
        "model.fc",
        2,
        17,
        None,
        1,
        [],
        ["2.0"],
        ["op1", None],
        False,
        "op",
    )
    checked = OpNode(
        id="op4",
        kind="op",
        label="mul",
        op="mul",
        grad_fn="MulBackward0",
        line=3,
        module="model.fc",
        call=2,
        sequence_nr=17,
        variable=None,
        created_by_pass=1,
        saved=[],
        constants=["2.0"],
        next=["op1", None],
        failed=False,
        look="op",
    )
    _same(made, checked)


def test_forward_and_backward_steps_by_position() -> None:
    _same(
        forward_step_record("op1", ["op1", "op0"], "add", ["t0"], ["t1"], 5, None, 1),
        ForwardStep(
            node="op1",
            nodes=["op1", "op0"],
            call="add",
            inputs=["t0"],
            outputs=["t1"],
            line=5,
            module=None,
            after_pass=1,
        ),
    )
    grad = TensorData(shape=[1], dtype="float32", values=[2.0])
    _same(
        backward_step_record("op1", [grad, None], [grad], None, None),
        BackwardStep(
            node="op1", grad_inputs=[grad, None], grad_outputs=[grad], grad_before=None, rule=None
        ),
    )


def test_a_field_set_later_stays_in_the_record() -> None:
    node = op_record(
        "op0",
        "op",
        "add",
        "add",
        "AddBackward0",
        None,
        None,
        None,
        None,
        None,
        None,
        [],
        [],
        [],
        False,
        "op",
    )
    node.label = "x + y"
    assert node.model_dump()["label"] == "x + y"
    assert OpNode.model_validate_json(node.model_dump_json()) == node


def test_a_saved_tensor_by_position() -> None:
    value = TensorData(shape=[], dtype="float32", values=1.5)
    _same(
        saved_tensor_record("other", None, value, None),
        SavedTensor(name="other", tensor=None, value=value, repr=None),
    )
