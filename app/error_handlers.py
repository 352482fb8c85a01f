"""Exception handlers that answer every malformed request with a 4xx that JSON can carry."""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

MAX_ECHOED_CHARS = 1000  # of an input quoted back in a validation error


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
