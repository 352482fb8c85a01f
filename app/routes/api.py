"""The JSON API, /api/v1: trace, examples, health."""

from __future__ import annotations

from typing import Annotated

import torch
from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import Response

from app import __version__
from app.config import Settings, get_settings
from app.examples import UnknownExample, get_example, summaries
from app.schemas import ErrorResponse, Example, ExampleSummary, Graph, HealthResponse, TraceRequest
from app.tracing import TraceFailure, trace_to_json

router = APIRouter(prefix="/api/v1", tags=["api"])
SettingsDep = Annotated[Settings, Depends(get_settings)]
ERRORS = {
    400: {"model": ErrorResponse},
    422: {"model": ErrorResponse},
    503: {"model": ErrorResponse},
}


@router.get("/health", response_model=HealthResponse)
def health() -> HealthResponse:
    """Whether the server is up, its versions, and whether CUDA is available."""
    return HealthResponse(
        status="ok", version=__version__, torch=torch.__version__, cuda=torch.cuda.is_available()
    )


@router.post("/trace", response_model=Graph, responses=ERRORS)
def trace(request: TraceRequest, settings: SettingsDep) -> Response:
    """Run a program on real tensors and return its recorded autograd graph."""
    try:
        payload = trace_to_json(request, settings)
    except TraceFailure as failure:
        raise HTTPException(failure.status, failure.detail.model_dump(exclude_none=True)) from None
    return Response(content=payload, media_type="application/json")


@router.get("/examples", response_model=list[ExampleSummary])
def list_examples() -> list[ExampleSummary]:
    """The gallery, without code."""
    return summaries()


@router.get(
    "/examples/{example_id}", response_model=Example, responses={404: {"model": ErrorResponse}}
)
def one_example(example_id: str) -> Example:
    """One gallery program with its code."""
    try:
        return get_example(example_id)
    except UnknownExample:
        raise HTTPException(
            404, {"type": "NotFound", "message": f"no example named {example_id!r}"}
        ) from None
