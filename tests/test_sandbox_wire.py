"""The wire format of a child's answer: whatever bytes a child (or the program in it) writes,
the server's reader returns Graph bytes or a failure from the closed set, and never raises."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from app.errors import TraceFailure, limit_failure
from app.sandbox.wire import (
    CHILD_LIMITS,
    HEADER_FIELDS,
    MAX_HEADER_BYTES,
    MAX_MESSAGE_CHARS,
    OUTCOMES,
    encode_answer,
    header_overdue,
    is_complete,
    read_answer,
)
from app.schemas import ErrorDetail

FAILURE_TYPES = {"PolicyError", "DeviceUnavailable", "LimitExceeded", "InternalError", "BadAnswer"}
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(alphabet=st.characters(blacklist_categories=()), max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
HEADERS = st.dictionaries(
    st.sampled_from(sorted(HEADER_FIELDS | {"status", "detail", "extra"})),
    JSON_VALUES
    | st.sampled_from(sorted(OUTCOMES))
    | st.sampled_from(sorted(CHILD_LIMITS))
    | st.integers(0, 64),
    max_size=6,
)


def check_outcome(output: bytes) -> None:
    """What read_answer makes of output: Graph bytes only from a well-formed Graph header,
    otherwise a failure whose status and type the server chose, that JSON can send."""
    result = read_answer(output)
    if isinstance(result, bytes):
        header, _, body = output.partition(b"\n")
        assert json.loads(header) == {"type": "Graph", "bytes": len(body)}
        assert result == body and body
        return
    assert isinstance(result, TraceFailure)
    assert result.status in (400, 422)
    assert result.detail.type in FAILURE_TYPES
    assert len(result.detail.message) <= MAX_MESSAGE_CHARS + 200
    if result.detail.type == "LimitExceeded":
        assert result.detail.limit in CHILD_LIMITS
    result.detail.model_dump_json().encode("utf-8")  # sendable, lone surrogates replaced


@settings(max_examples=200, deadline=None)
@given(output=st.binary(max_size=600))
def test_any_bytes_are_an_answer_or_a_closed_failure(output: bytes) -> None:
    check_outcome(output)
    assert is_complete(output) in (True, False)
    assert header_overdue(output) in (True, False)


@settings(max_examples=200, deadline=None)
@given(header=HEADERS, body=st.binary(max_size=40), lie_about_size=st.booleans())
def test_any_json_header_is_an_answer_or_a_closed_failure(
    header: dict, body: bytes, lie_about_size: bool
) -> None:
    if "bytes" in header and not lie_about_size:
        header["bytes"] = len(body)
    try:
        line = json.dumps(header).encode()
    except ValueError:
        return
    check_outcome(line + b"\n" + body)


def test_a_forged_detail_that_is_no_error_detail_is_a_bad_answer() -> None:
    # the header that once stopped the thread reading every answer
    result = read_answer(b'{"status": 400, "detail": "not a detail", "bytes": 0}\n')
    assert isinstance(result, TraceFailure) and result.status == 422
    assert result.detail.type == "BadAnswer"


def test_a_child_cannot_choose_the_status() -> None:
    forged = {"type": "InternalError", "bytes": 0, "message": "x", "status": 500}
    result = read_answer(json.dumps(forged).encode() + b"\n")
    assert isinstance(result, TraceFailure) and result.detail.type == "BadAnswer"
    result = read_answer(b'{"type": "InternalError", "bytes": 0, "message": "x"}\n')
    assert isinstance(result, TraceFailure) and result.status == 422
    result = read_answer(b'{"type": "ServerError", "bytes": 0, "message": "x"}\n')
    assert isinstance(result, TraceFailure) and result.detail.type == "BadAnswer"


def test_each_failure_goes_over_the_wire_and_back_unchanged() -> None:
    failures = [
        TraceFailure(400, ErrorDetail(type="PolicyError", message="no", line=3, col=4)),
        TraceFailure(400, ErrorDetail(type="DeviceUnavailable", message="no CUDA")),
        limit_failure("nodes", "too many nodes"),
        TraceFailure(422, ErrorDetail(type="InternalError", message="a bug")),
    ]
    for failure in failures:
        result = read_answer(encode_answer(None, failure))
        assert isinstance(result, TraceFailure)
        assert (result.status, result.detail) == (failure.status, failure.detail)
    assert read_answer(encode_answer(b'{"nodes": []}')) == b'{"nodes": []}'


def test_an_unknown_limit_or_a_lone_surrogate_is_handled() -> None:
    result = read_answer(b'{"type": "LimitExceeded", "bytes": 0, "message": "x", "limit": "y"}\n')
    assert isinstance(result, TraceFailure) and result.detail.type == "BadAnswer"
    result = read_answer(b'{"type": "PolicyError", "bytes": 0, "message": "a\\ud800b"}\n')
    assert isinstance(result, TraceFailure) and result.detail.message == "a?b"


def test_a_header_must_come_within_its_bound() -> None:
    assert not header_overdue(b"x" * MAX_HEADER_BYTES)
    assert header_overdue(b"x" * (MAX_HEADER_BYTES + 1))
    long_header = json.dumps({"type": "Graph", "bytes": 1, "pad": "x" * MAX_HEADER_BYTES})
    result = read_answer(long_header.encode() + b"\nx")
    assert isinstance(result, TraceFailure) and result.detail.type == "BadAnswer"


def test_deeply_nested_headers_are_a_bad_answer() -> None:
    result = read_answer(b"[" * 100_000 + b"\n")
    assert isinstance(result, TraceFailure) and result.detail.type == "BadAnswer"


def test_the_sandbox_imports_nothing_above_it() -> None:
    """The recording functions are passed in (app.tracing.RECORDING), never imported."""
    import ast
    from pathlib import Path

    import app.sandbox

    above = ("app.tracing", "app.service", "app.routes", "app.main", "app.cli", "app.graph_jobs")
    for path in Path(app.sandbox.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            assert not any(n.startswith(above) for n in names), (path.name, names)
