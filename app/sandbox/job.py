"""One request in flight, as the server sees it: the answer read so far and how it ended."""

from __future__ import annotations

import concurrent.futures
import logging
import selectors
import signal
import socket
from dataclasses import dataclass, field
from typing import Any

from app.errors import TraceFailure, failure, limit_failure
from app.sandbox.pool_settings import PoolSettings
from app.sandbox.wire import is_complete, read_answer

log = logging.getLogger("autograd_explorer.pool")


@dataclass
class Job:
    """A request in flight: its socket, the bytes its child wrote and the worker parent's word
    on how the child ended."""

    id: int
    sock: socket.socket
    future: concurrent.futures.Future[bytes]
    output: bytearray = field(default_factory=bytearray)
    read_done: bool = False
    ended: dict[str, Any] | None = None
    too_big: bool = False

    def stop_reading(self, selector: selectors.BaseSelector) -> None:
        """Read no more of this job's socket, and close it."""
        if self.read_done:
            return
        self.read_done = True
        try:
            selector.unregister(self.sock)
        except (KeyError, ValueError, OSError):
            pass
        self.sock.close()

    def settle(self, result: bytes | TraceFailure) -> None:
        """Close the socket and give the waiting request its answer or failure (once)."""
        try:
            self.sock.close()
        except OSError:
            pass
        if self.future.done():
            return
        if isinstance(result, TraceFailure):
            if result.detail.type == "InternalError":
                log.error("a worker failed: %r", result.detail.message)
            self.future.set_exception(result)
        else:
            self.future.set_result(result)

    def outcome(self, settings: PoolSettings) -> bytes | TraceFailure:
        """The job's outcome, decided by the server: limits the worker parent saw first, then
        the child's answer checked against the closed format (app.sandbox.wire)."""
        ended = self.ended or {}
        if self.too_big:
            return limit_failure(
                "response_bytes",
                f"the recorded graph is over the limit of {settings.max_response_bytes} bytes "
                "(set AE_MAX_RESPONSE_BYTES to change it)",
            )
        if ended.get("killed_for") == "wall_time":
            return limit_failure(
                "wall_time",
                f"the program ran longer than {settings.wall_seconds:g} s "
                "(set AE_WALL_SECONDS to change the limit)",
            )
        if is_complete(self.output):
            return read_answer(self.output)
        if ended.get("signal") in (signal.SIGXCPU, signal.SIGKILL):  # maybe mid-answer
            return limit_failure(
                "cpu_time",
                f"the program used more than {settings.cpu_seconds} s of CPU time "
                "(set AE_CPU_SECONDS to change the limit)",
            )
        if self.output:
            return read_answer(self.output)
        reason = (
            f"signal {ended.get('signal')!r}"
            if ended.get("signal")
            else f"exit status {ended.get('exit')!r}"
        )
        return failure(
            "WorkerCrashed", f"the program ended its worker without an answer ({reason})"
        )
