"""The failures a request can end in, and the one table of their HTTP statuses."""

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


# Every error type the API answers with, and its status: the one place that decides them.
STATUS_OF: dict[str, int] = {
    "BadRequest": 400,
    "BadStep": 400,
    "DeviceUnavailable": 400,
    "PolicyError": 400,
    "CrossSite": 403,
    "NotFound": 404,
    "BadAnswer": 422,
    "InternalError": 422,
    "LayoutFailed": 422,
    "LimitExceeded": 422,
    "WorkerCrashed": 422,
    "RateLimited": 429,
    "Busy": 503,
    "LayoutUnavailable": 503,
    "RendererUnavailable": 503,
    "Unavailable": 503,
}


@dataclass
class TraceFailure(Exception):
    """A trace that produced no graph: status code and the error detail to send."""

    status: int
    detail: ErrorDetail


def failure(kind: str, message: str, **fields: object) -> TraceFailure:
    """A failure of an error type, with the status STATUS_OF gives it."""
    return TraceFailure(STATUS_OF[kind], ErrorDetail(type=kind, message=message, **fields))


def limit_failure(limit: str, message: str) -> TraceFailure:
    """A 422 LimitExceeded failure."""
    return failure("LimitExceeded", message, limit=limit)
