"""Turn a program into a Graph: in this process (trace_code), or as JSON bytes for a request."""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

from app.config import Settings
from app.errors import (
    DeviceUnavailable,
    LimitExceeded,
    PolicyError,
    failure,
    limit_failure,
)
from app.graph_budget import fit_to_bytes
from app.recorder import TraceOptions
from app.sandbox.runner import RunLimits, trace_program
from app.sandbox.wire import Recording
from app.schemas import Graph, TraceRequest


def options_from(settings: Settings) -> TraceOptions:
    """TraceOptions from the server settings."""
    return TraceOptions(
        inline_limit=settings.inline_limit,
        max_nodes=settings.max_nodes,
        max_passes=settings.max_passes,
    )


def trace_code(
    code: str,
    device: str = "cpu",
    seed: int = 0,
    options: TraceOptions | None = None,
    wall_seconds: float | None = None,
) -> Graph:
    """Run trusted code in this process and record its autograd graph (no sandbox, no checks).

    LimitExceeded and DeviceUnavailable end the trace; an exception of the program itself is
    recorded in the Graph with the part recorded before it.
    """
    return trace_program(code, device, seed, options, limits=RunLimits(wall_seconds))


def trace_to_json(request: TraceRequest, settings: Settings) -> bytes:
    """Check, run and record a request's program in this process; Graph JSON or TraceFailure."""
    if request.device == "cuda" and not settings.allow_cuda:
        raise failure("DeviceUnavailable", "CUDA is disabled on this server")
    try:
        graph = trace_program(
            request.code,
            request.device if settings.allow_cuda else "cpu",
            request.seed,
            replace(options_from(settings), values=request.values),
            settings.policy_limits() if settings.language_layer else None,
        )
        payload = fit_to_bytes(graph, settings.max_response_bytes)
    except PolicyError as exc:
        raise failure("PolicyError", exc.message, line=exc.line, col=exc.col) from None
    except LimitExceeded as exc:
        raise limit_failure(exc.limit, exc.message) from None
    except DeviceUnavailable as exc:
        raise failure("DeviceUnavailable", str(exc)) from None
    except MemoryError:
        raise limit_failure("memory", "the program ran out of its memory limit") from None
    if payload is None:
        raise limit_failure(
            "response_bytes",
            "the recorded graph does not fit in the limit of "
            f"{settings.max_response_bytes} bytes (set AE_MAX_RESPONSE_BYTES to change it)",
        )
    return payload


@lru_cache(maxsize=4)
def settings_from_json(text: str) -> Settings:
    """Settings sent through the sandbox as JSON (parsed once per process)."""
    return Settings.model_validate_json(text)


def record_in_child(request: TraceRequest, settings_json: str) -> bytes:
    """trace_to_json in a worker child, with the settings the server sent."""
    return trace_to_json(request, settings_from_json(settings_json))


def rehearse(code: str, settings_json: str) -> None:
    """Record a constant program as a request would be, without writing an answer (warm-up)."""
    trace_program(code, "cpu", 0, options_from(settings_from_json(settings_json)))


RECORDING = Recording(record_in_child, rehearse)  # what the sandbox's children run
