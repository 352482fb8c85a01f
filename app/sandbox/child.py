"""A child: one process forked by the worker parent that runs one request's program and writes
its answer to the server directly. It only reports; the server decides (app.sandbox.wire)."""

from __future__ import annotations

import os

from app.errors import TraceFailure, failure, limit_failure
from app.sandbox.pool_settings import PoolSettings
from app.sandbox.wire import Recording, encode_answer
from app.schemas import TraceRequest


def serve_one(fd: int, settings: PoolSettings, recording: Recording) -> None:
    """Read one request from its socket, record it, write its answer back and close.

    The worker parent ends this process once the server has the whole answer: nothing after
    the write (the program may have replaced os._exit) keeps a worker."""
    request = read_all(fd)
    answer = _answer(request, settings, recording)
    write_all(fd, answer)
    os.close(fd)  # the server has its answer now, before this process's memory is torn down


def _answer(data: bytes, settings: PoolSettings, recording: Recording) -> bytes:
    try:
        request = TraceRequest.model_validate_json(data)
        if request.device in ("cuda", "auto"):
            _limit_cuda_memory(settings.cuda_memory_fraction)
        return encode_answer(recording.record(request, settings.recording))
    except TraceFailure as refused:
        return encode_answer(None, refused)
    except MemoryError:
        return encode_answer(
            None, limit_failure("memory", "the program ran out of its memory limit")
        )
    except Exception as exc:  # a bug of the explorer, not of the program: report, don't hang
        return encode_answer(None, failure("InternalError", _safe_text(exc)))


def _safe_text(exc: BaseException) -> str:
    try:
        return str(exc)[:500]
    except Exception:
        return type(exc).__name__


def detach_standard_streams() -> None:
    """Point descriptors 0-2 at /dev/null: the server's log is not the program's to write to.

    A child inherits the server's stdout and stderr through bubblewrap and the worker parent;
    its program's output comes back in the answer, so nothing it writes may reach or flood the
    log."""
    null = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1, 2):
        os.dup2(null, target)
    if null > 2:
        os.close(null)


def _limit_cuda_memory(fraction: float) -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.set_per_process_memory_fraction(fraction)


def read_all(fd: int) -> bytes:
    """Everything readable from fd until its end."""
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def write_all(fd: int, data: bytes) -> None:
    """Write all of data to fd."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
