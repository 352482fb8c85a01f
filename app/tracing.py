"""Turn a TraceRequest into Graph JSON bytes, or a typed failure the API maps to a status code."""

from __future__ import annotations

from dataclasses import dataclass

from app.config import Settings
from app.graph_tracer import DeviceUnavailable, LimitExceeded, TraceOptions, trace_code
from app.schemas import ErrorDetail, TraceRequest


@dataclass
class TraceFailure(Exception):
    """A trace that produced no graph: status code and the error detail to send."""

    status: int
    detail: ErrorDetail


def options_from(settings: Settings) -> TraceOptions:
    """TraceOptions from the server settings."""
    return TraceOptions(
        inline_limit=settings.inline_limit,
        max_nodes=settings.max_nodes,
        max_passes=settings.max_passes,
    )


def trace_to_json(request: TraceRequest, settings: Settings) -> bytes:
    """Run and record the program in this process; Graph JSON bytes or TraceFailure."""
    try:
        graph = trace_code(request.code, request.device, request.seed, options_from(settings))
    except LimitExceeded as exc:
        raise TraceFailure(
            422, ErrorDetail(type="LimitExceeded", limit=exc.limit, message=exc.message)
        ) from exc
    except DeviceUnavailable as exc:
        raise TraceFailure(400, ErrorDetail(type="DeviceUnavailable", message=str(exc))) from exc
    payload = graph.model_dump_json().encode()
    if len(payload) > settings.max_response_bytes:
        raise TraceFailure(
            422,
            ErrorDetail(
                type="LimitExceeded",
                limit="response_bytes",
                message=f"the recorded graph is {len(payload)} bytes, over the limit of "
                f"{settings.max_response_bytes}",
            ),
        )
    return payload
