"""How the API answers an error: the HTTP error of every failure, and 4xx for malformed requests."""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.dot_run import LayoutBusy, LayoutUnavailable
from app.errors import TraceFailure, failure
from app.page_render import RendererUnavailable
from app.sandbox.pool import PoolBusy
from app.service import RETRY_AFTER_SECONDS, RateLimited

MAX_ECHOED_CHARS = 1000  # of an input quoted back in a validation error


def http_error(refused: TraceFailure, headers: dict[str, str] | None = None) -> HTTPException:
    """The API's answer to a failure: its status, its detail as the body."""
    return HTTPException(refused.status, refused.detail.model_dump(exclude_none=True), headers)


def http_error_of(exc: Exception) -> HTTPException | None:
    """The API's answer to an exception the service may raise; None for any other."""
    if isinstance(exc, TraceFailure):
        return http_error(exc)
    if isinstance(exc, PoolBusy | LayoutBusy):
        busy = failure("Busy", f"the server is busy ({exc}); retry shortly")
        return http_error(busy, {"Retry-After": str(RETRY_AFTER_SECONDS)})
    if isinstance(exc, LayoutUnavailable | RendererUnavailable):
        return http_error(failure(type(exc).__name__, str(exc)))
    if isinstance(exc, RateLimited):
        return http_error(failure("RateLimited", str(exc)), {"Retry-After": str(exc.retry_after)})
    return None


def sendable(value: Any) -> Any:
    """value with non-finite numbers as "NaN" / "Infinity" / "-Infinity", text that encodes as
    UTF-8 and long inputs cut: what strict JSON can send back."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, str):
        return value[:MAX_ECHOED_CHARS].encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {sendable(k): sendable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [sendable(v) for v in value]
    return value


async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """422 with FastAPI's list of errors, each quoting its input in a form JSON can send
    (`"seed": NaN` once made this answer fail and a 500 go out)."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    return JSONResponse(status_code=422, content={"detail": sendable(jsonable_encoder(errors))})


def install(app: FastAPI) -> None:
    """Register the handlers on the app."""
    app.add_exception_handler(RequestValidationError, invalid_request)
