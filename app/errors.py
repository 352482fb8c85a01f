"""The failures a trace can end in besides an exception of the program itself."""

from __future__ import annotations

from dataclasses import dataclass

from app.schemas import ErrorDetail


class PolicyError(Exception):
    """The program uses something the explorer does not allow (HTTP 400), at a line and column."""

    def __init__(self, message: str, line: int | None = None, col: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col


class LimitExceeded(Exception):
    """A run went past one of its bounds: time, memory, graph or code size (HTTP 422)."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit
        self.message = message


class DeviceUnavailable(Exception):
    """The requested device is not present on this machine."""


class BadAnswer(Exception):
    """What a worker sent back is not an answer of the expected format and bounds (HTTP 422)."""


@dataclass
class TraceFailure(Exception):
    """A trace that produced no graph: status code and the error detail to send."""

    status: int
    detail: ErrorDetail


def limit_failure(limit: str, message: str) -> TraceFailure:
    """A 422 LimitExceeded failure."""
    return TraceFailure(422, ErrorDetail(type="LimitExceeded", limit=limit, message=message))
