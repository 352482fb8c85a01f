"""The failures a trace can end in besides an exception of the program itself."""

from __future__ import annotations


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
