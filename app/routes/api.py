"""The JSON API, /api/v1: trace, layout, render, examples, devices, health."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable
from typing import Annotated

import torch
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from pydantic import ValidationError

from app import __version__
from app.devices import list_devices
from app.examples import UnknownExample, get_example, summaries
from app.export import FORMATS, filename
from app.layout import INSTALL_HINT, dot_available
from app.schemas import (
    DevicesResponse,
    ErrorResponse,
    Example,
    ExampleSummary,
    Graph,
    HealthResponse,
    Layout,
    LayoutRequest,
    RenderRequest,
    TraceRequest,
)
from app.service import LayoutUnavailable, PoolBusy, RateLimited, TraceFailure, TraceService

router = APIRouter(prefix="/api/v1", tags=["api"])
ERRORS = {
    400: {"model": ErrorResponse, "description": "the policy refused the program"},
    413: {"model": ErrorResponse, "description": "the request body is too large"},
    422: {"model": ErrorResponse, "description": "a limit was hit"},
    429: {"model": ErrorResponse, "description": "too many requests from this client"},
    503: {"model": ErrorResponse, "description": "busy: retry after Retry-After seconds"},
}


def get_service(request: Request) -> TraceService:
    """The app's trace service (created at start-up)."""
    return request.app.state.service


ServiceDep = Annotated[TraceService, Depends(get_service)]


@router.get("/health", response_model=HealthResponse)
async def health(service: ServiceDep) -> HealthResponse:
    """Whether the server is up, its versions, CUDA, and which isolation layers are active."""
    cuda = service.pool.cuda if service.pool is not None else torch.cuda.is_available()
    layout = dot_available()
    return HealthResponse(
        status="ok",
        version=__version__,
        torch=torch.__version__,
        cuda=cuda,
        layers=service.layers(),
        layout=layout,
        notes=[] if layout else [INSTALL_HINT],
    )


@router.get("/devices", response_model=DevicesResponse)
def devices(service: ServiceDep) -> DevicesResponse:
    """The devices a program can run on: the CPU, and each CUDA device with name and memory."""
    found = list_devices(service.settings.allow_cuda)
    return DevicesResponse(devices=found, cuda=any(d.kind == "cuda" for d in found))


async def _answer(
    work: Awaitable[bytes], media_type: str = "application/json", headers: dict | None = None
) -> Response:
    """Bytes from the service, or the error model of the API."""
    try:
        payload = await work
    except TraceFailure as failure:
        raise HTTPException(failure.status, failure.detail.model_dump(exclude_none=True)) from None
    except PoolBusy as busy:
        raise HTTPException(
            503,
            {"type": "Busy", "message": f"the server is busy ({busy}); retry shortly"},
            headers={"Retry-After": "2"},
        ) from None
    except RateLimited as limited:
        raise HTTPException(
            429,
            {"type": "RateLimited", "message": str(limited)},
            headers={"Retry-After": str(limited.retry_after)},
        ) from None
    except LayoutUnavailable as missing:
        raise HTTPException(503, {"type": "LayoutUnavailable", "message": str(missing)}) from None
    return Response(content=payload, media_type=media_type, headers=headers)


@router.post("/trace", response_model=Graph, responses=ERRORS)
async def trace(body: TraceRequest, request: Request, service: ServiceDep) -> Response:
    """Run a program on real tensors and return its recorded autograd graph, laid out."""
    client = request.client.host if request.client else None
    return await _answer(service.trace(body, client))


@router.post("/layout", response_model=Layout, responses=ERRORS)
async def layout(body: LayoutRequest, request: Request, service: ServiceDep) -> Response:
    """Lay out a program's graph again with the given modules (or line groups) expanded."""
    client = request.client.host if request.client else None
    return await _answer(service.layout(body, client))


RENDER_RESPONSES = {
    200: {"content": {t: {} for t, _ in FORMATS.values()}, "description": "the export"},
    **ERRORS,
}


async def _render(body: RenderRequest, request: Request, service: TraceService) -> Response:
    client = request.client.host if request.client else None
    media_type = FORMATS[body.format][0]
    disposition = "inline" if body.format == "svg" else "attachment"
    headers = {"Content-Disposition": f'{disposition}; filename="{filename(body.format)}"'}
    return await _answer(service.render(body, client), media_type, headers)


@router.post("/render", response_class=Response, responses=RENDER_RESPONSES)
async def render_post(body: RenderRequest, request: Request, service: ServiceDep) -> Response:
    """Export a program's graph at a step as SVG, PNG, DOT or a standalone HTML player."""
    return await _render(body, request, service)


@router.get("/render", response_class=Response, responses=RENDER_RESPONSES)
async def render_get(
    request: Request,
    service: ServiceDep,
    code: str,
    format: str = "svg",
    device: str = "cpu",
    seed: int = 0,
    step: str | None = None,
    theme: str = "light",
    lang: str = "en",
    expanded: str = "",
) -> Response:
    """The same export for links: code is base64url-encoded UTF-8, expanded comma-separated."""
    try:
        padded = code + "=" * (-len(code) % 4)
        source = base64.b64decode(padded.encode(), altchars=b"-_", validate=True).decode("utf-8")
        body = RenderRequest(
            code=source,
            format=format,
            device=device,
            seed=seed,
            step=step,
            theme=theme,
            lang=lang,
            expanded=[p for p in expanded.split(",") if p],
        )
    except (ValueError, binascii.Error, ValidationError) as exc:
        raise HTTPException(400, {"type": "BadRequest", "message": str(exc)[:500]}) from None
    return await _render(body, request, service)


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
