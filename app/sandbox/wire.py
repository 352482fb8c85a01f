"""The wire format: control messages between the server and the worker parent, and a child's
answer (one header line, then a body), which the server reads as hostile input.

A child runs the program it answers for, and the program can write anything to the socket its
answer goes back on. So the child only *reports*: a header names one outcome of a closed set,
with a bounded message; the server decides the HTTP status itself (`read_answer`), and any
answer outside the format or its bounds is a 422 BadAnswer, never an exception.
"""

from __future__ import annotations

import importlib
import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.errors import TraceFailure, failure, limit_failure

CONTROL_MESSAGE_BYTES = 64 * 1024
MAX_HEADER_BYTES = 4096  # a header line longer than this is not an answer
MAX_MESSAGE_CHARS = 2000
MAX_POSITION = 10**7  # line and column numbers of a program's error
GRAPH = "Graph"
# the closed set of outcomes a child may report (their statuses: app.errors.STATUS_OF)
OUTCOMES = frozenset({GRAPH, "PolicyError", "DeviceUnavailable", "LimitExceeded", "InternalError"})
CHILD_LIMITS = frozenset(  # the limits a child can report hitting
    {
        "wall_time",
        "cpu_time",
        "memory",
        "response_bytes",
        "nodes",
        "code_bytes",
        "code_lines",
        "ast_nodes",
        "nesting",
    }
)
HEADER_FIELDS = frozenset({"type", "bytes", "message", "line", "col", "limit"})


# ----- control messages (server <-> worker parent) ---------------------------------------------


def send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    """One control message, with descriptors passed along (SCM_RIGHTS) when given."""
    data = json.dumps(message).encode()
    if fds:
        socket.send_fds(sock, [data], fds)
    else:
        sock.send(data)


def receive(sock: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    """One control message and the descriptors sent with it; (None, []) when closed.

    A message that is not a JSON object reads as {} (ignored by both sides)."""
    data, fds, _, _ = socket.recv_fds(sock, CONTROL_MESSAGE_BYTES, 4)
    if not data:
        for fd in fds:
            os.close(fd)
        return None, []
    try:
        message = json.loads(data)
    except (ValueError, RecursionError):
        message = {}
    return (message if isinstance(message, dict) else {}), fds


# ----- what a child runs -----------------------------------------------------------------------


@dataclass(frozen=True)
class Recording:
    """What a child runs, passed in by the caller so that the sandbox imports nothing above it.

    `record(request, settings)` returns Graph JSON bytes or raises TraceFailure;
    `rehearse(code, settings)` records a constant program without an answer (warm-up). Both
    are module-level functions: the worker parent imports them again by name."""

    record: Callable[[Any, Any], bytes]
    rehearse: Callable[[str, Any], None]

    def names(self) -> dict[str, str]:
        """The functions as 'module:name', for the worker parent's start message."""
        return {
            "record": f"{self.record.__module__}:{self.record.__qualname__}",
            "rehearse": f"{self.rehearse.__module__}:{self.rehearse.__qualname__}",
        }

    @classmethod
    def from_names(cls, names: dict[str, str]) -> Recording:
        """The functions named by names() (in the worker parent)."""

        def load(name: str) -> Any:
            module, _, attribute = name.partition(":")
            return getattr(importlib.import_module(module), attribute)

        return cls(load(names["record"]), load(names["rehearse"]))


# ----- a child's answer ------------------------------------------------------------------------


def encode_answer(body: bytes | None, failure: TraceFailure | None = None) -> bytes:
    """A child's answer: a Graph's JSON, or a failure reduced to the fields the format has."""
    if failure is None:
        header: dict[str, Any] = {"type": GRAPH, "bytes": len(body or b"")}
        return json.dumps(header).encode() + b"\n" + (body or b"")
    detail = failure.detail
    kind = detail.type if detail.type in OUTCOMES and detail.type != GRAPH else "InternalError"
    header = {"type": kind, "bytes": 0, "message": detail.message[:MAX_MESSAGE_CHARS]}
    for name in ("line", "col", "limit"):
        if getattr(detail, name) is not None:
            header[name] = getattr(detail, name)
    return json.dumps(header).encode() + b"\n"


def _header(output: bytes | bytearray) -> tuple[dict[str, Any], int] | None:
    """The header object and where the body starts, or None when there is none (yet)."""
    newline = output.find(b"\n", 0, MAX_HEADER_BYTES + 1)
    if newline < 0:
        return None
    try:
        header = json.loads(bytes(output[:newline]))
    except (ValueError, RecursionError):
        return None
    return (header, newline + 1) if isinstance(header, dict) else None


def header_overdue(output: bytes | bytearray) -> bool:
    """Whether the output is already too long to hold a header line: not an answer."""
    return len(output) > MAX_HEADER_BYTES and output.find(b"\n", 0, MAX_HEADER_BYTES + 1) < 0


def is_complete(output: bytes | bytearray) -> bool:
    """Whether the output is a whole answer: a header and exactly the body it announces."""
    found = _header(output)
    if found is None:
        return False
    header, start = found
    size = header.get("bytes")
    return type(size) is int and size == len(output) - start


def bad_answer(why: str) -> TraceFailure:
    """The failure of an answer outside the format or its bounds."""
    return failure(
        "BadAnswer",
        f"the worker's answer was not understood ({why}); a program may have "
        "written to the socket its answer goes back on",
    )


def _text(value: Any) -> str | None:
    """A bounded message that encodes as UTF-8 (lone surrogates replaced), or None."""
    if not isinstance(value, str):
        return None
    cut = value[:MAX_MESSAGE_CHARS]
    return cut.encode("utf-8", "replace").decode("utf-8")


def _position(value: Any) -> int | None:
    if type(value) is int and 0 <= value <= MAX_POSITION:
        return value
    return None


def read_answer(output: bytes | bytearray) -> bytes | TraceFailure:
    """A child's whole answer, checked against the closed format: the Graph JSON bytes (still
    to be parsed and bounded by the server), or the failure with the status the server maps.
    Never raises."""
    try:
        return _read_answer(output)
    except Exception as exc:  # a reader that raises would stop every answer after this one
        return bad_answer(f"unreadable: {type(exc).__name__}")


def _read_answer(output: bytes | bytearray) -> bytes | TraceFailure:
    found = _header(output)
    if found is None:
        return bad_answer("no header line")
    header, start = found
    if not set(header) <= HEADER_FIELDS:
        return bad_answer("unknown header fields")
    kind, size = header.get("type"), header.get("bytes")
    if not isinstance(kind, str) or kind not in OUTCOMES:
        return bad_answer("an unknown outcome")
    if type(size) is not int or size != len(output) - start:
        return bad_answer("a body of another length than announced")
    if kind == GRAPH:
        if size == 0 or set(header) != {"type", "bytes"}:
            return bad_answer("a graph without a body, or with error fields")
        return bytes(output[start:])
    message = _text(header.get("message"))
    if size != 0 or message is None:
        return bad_answer("an error without its message, or with a body")
    line, col = _position(header.get("line")), _position(header.get("col"))
    if kind == "LimitExceeded":
        limit = header.get("limit")
        if limit not in CHILD_LIMITS:
            return bad_answer("an unknown limit")
        return limit_failure(limit, message)
    return failure(kind, message, line=line, col=col)
