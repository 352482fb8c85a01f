"""The JSON API, /api/v1: trace, layout, render, examples, schema, devices, health."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable
from typing import Annotated, Any

import torch
from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from app import __version__, openapi_examples
from app.client_identity import client_of, current_or_new_session, keep_session
from app.contract_schema import graph_json_schema
from app.deck import DECK_FORMATS
from app.devices import list_devices
from app.dot_run import INSTALL_HINT, dot_available
from app.error_handlers import http_error, http_error_of
from app.errors import failure
from app.export import FORMATS, filename
from app.lessons import UnknownLesson, get_lesson, summaries
from app.schemas import (
    ErrorResponse,
    Example,
    ExampleSummary,
    Graph,
    Layout,
    LayoutRequest,
    RenderRequest,
    TraceRequest,
)
from app.service import (
    TraceService,
)
from app.site_guard import same_site_only
from app.status_schemas import DevicesResponse, HealthResponse, SessionResponse

router = APIRouter(prefix="/api/v1", tags=["api"])
ERRORS = {
    400: {"model": ErrorResponse, "description": "the policy refused the program"},
    403: {"model": ErrorResponse, "description": "another site's page sent the request"},
    413: {"model": ErrorResponse, "description": "the request body is too large"},
    422: {
        "model": ErrorResponse,
        "description": "a limit was hit",
        "content": {"application/json": {"example": openapi_examples.ERROR}},
    },
    429: {"model": ErrorResponse, "description": "too many requests from this client"},
    503: {"model": ErrorResponse, "description": "busy: retry after Retry-After seconds"},
}


def ok(example: Any, media_type: str = "application/json") -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entry of a 200 answer with its example."""
    return {200: {"content": {media_type: {"example": example}}}}


def get_service(request: Request) -> TraceService:
    """The app's trace service (created at start-up)."""
    return request.app.state.service


ServiceDep = Annotated[TraceService, Depends(get_service)]
RUNS_WORK = [Depends(same_site_only)]  # endpoints that run a program or graphviz


@router.get("/health", response_model=HealthResponse, responses=ok(openapi_examples.HEALTH))
async def health(service: ServiceDep) -> HealthResponse:
    """Whether the server is up, its versions, CUDA, and which isolation layers are active."""
    cuda = service.pool.cuda if service.pool is not None else torch.cuda.is_available()
    layout = dot_available()
    pool = service.pool
    return HealthResponse(
        status="ok",
        version=__version__,
        torch=torch.__version__,
        cuda=cuda,
        layers=service.layers(),
        layout=layout,
        notes=[] if layout else [INSTALL_HINT],
        workers_ok=pool.alive if pool is not None else True,
        workers_problem=pool.problem if pool is not None else None,
        workers_restarts=pool.restarts if pool is not None else 0,
        shared_state=service.shared_mode,
        programs_run=service.programs_run,
    )


@router.get("/session", response_model=SessionResponse, responses=ok({"token": "q3X0...Zk.hR2..."}))
def session(request: Request, response: Response) -> SessionResponse:
    """A session for an API client: send its token as X-AE-Session (the cookie works too);
    per-client caps and the answer cache count per session."""
    token = current_or_new_session(request)
    keep_session(request, response, token)
    return SessionResponse(token=token)


@router.get("/devices", response_model=DevicesResponse, responses=ok(openapi_examples.DEVICES))
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
    except Exception as exc:
        error = http_error_of(exc)
        if error is None:
            raise
        raise error from None
    return Response(content=payload, media_type=media_type, headers=headers)


@router.post(
    "/trace",
    response_model=Graph,
    responses={**ok(openapi_examples.GRAPH), **ERRORS},
    dependencies=RUNS_WORK,
)
async def trace(
    body: Annotated[TraceRequest, Body(openapi_examples=openapi_examples.TRACE_REQUESTS)],
    request: Request,
    service: ServiceDep,
) -> Response:
    """Run a program on real tensors and return its recorded autograd graph, laid out."""
    return await _answer(service.trace(body, client_of(request)))


@router.post(
    "/layout",
    response_model=Layout,
    responses={**ok(openapi_examples.GRAPH["layout"]), **ERRORS},
    dependencies=RUNS_WORK,
)
async def layout(
    body: Annotated[LayoutRequest, Body(openapi_examples=openapi_examples.LAYOUT_REQUESTS)],
    request: Request,
    service: ServiceDep,
) -> Response:
    """Lay out a program's graph again with the given modules (or line groups) expanded."""
    return await _answer(service.layout(body, client_of(request)))


EXPORT_TYPES = {**FORMATS, **DECK_FORMATS}  # format -> (content type, file extension)
RENDER_RESPONSES = {
    200: {
        "content": {
            t: openapi_examples.RENDER_RESPONSE_EXAMPLES.get(t, {})
            for t, _ in EXPORT_TYPES.values()
        },
        "description": "the export",
    },
    **ERRORS,
}


async def _render(body: RenderRequest, request: Request, service: TraceService) -> Response:
    media_type, extension = EXPORT_TYPES[body.format]
    disposition = "inline" if body.format == "svg" else "attachment"
    name = filename(extension, body.name, body.step)  # as the page names it: lesson-step.ext
    headers = {"Content-Disposition": f'{disposition}; filename="{name}"'}
    return await _answer(service.render(body, client_of(request)), media_type, headers)


@router.post("/render", response_class=Response, responses=RENDER_RESPONSES, dependencies=RUNS_WORK)
async def render_post(
    body: Annotated[RenderRequest, Body(openapi_examples=openapi_examples.RENDER_REQUESTS)],
    request: Request,
    service: ServiceDep,
) -> Response:
    """Export a program's graph at a step as SVG, PNG, DOT or a standalone HTML player, or a
    deck with a page per player step as PDF, PPTX, GIF or MP4 (at most AE_MAX_DECK_PAGES pages:
    past it 422 LimitExceeded 'deck_pages')."""
    return await _render(body, request, service)


@router.get("/render", response_class=Response, responses=RENDER_RESPONSES, dependencies=RUNS_WORK)
async def render_get(
    request: Request,
    service: ServiceDep,
    code: Annotated[str, Query(openapi_examples=openapi_examples.RENDER_CODE_PARAMETER)],
    format: str = "svg",
    device: str = "cpu",
    seed: int = 0,
    step: str | None = None,
    theme: str = "light",
    lang: str = "en",
    expanded: str = "",
    steps: str | None = None,
    aspect: str = "16:9",
    seconds: float = 1.5,
    name: str | None = None,
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
            steps=steps,
            aspect=aspect,
            seconds=seconds,
            name=name,
        )
    except (ValueError, binascii.Error, ValidationError) as exc:
        raise http_error(failure("BadRequest", str(exc)[:500])) from None
    return await _render(body, request, service)


@router.get(
    "/examples",
    response_model=list[ExampleSummary],
    responses=ok(openapi_examples.EXAMPLE_SUMMARIES),
)
def list_examples() -> list[ExampleSummary]:
    """The gallery, without code."""
    return summaries()


@router.get(
    "/examples/{example_id}",
    response_model=Example,
    responses={**ok(openapi_examples.EXAMPLE), 404: {"model": ErrorResponse}},
)
def one_example(
    example_id: Annotated[
        str, Path(openapi_examples={"no backward call": {"value": "implicit_backward"}})
    ],
) -> Example:
    """One gallery program with its code."""
    try:
        return get_lesson(example_id)
    except UnknownLesson:
        raise http_error(failure("NotFound", f"no example named {example_id!r}")) from None


@router.get(
    "/schema",
    response_model=dict[str, Any],
    responses=ok(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "Graph",
            "type": "object",
            "properties": {"schema_version": {"default": 1, "type": "integer"}},
            "$defs": {"TensorNode": {"type": "object"}},
        }
    ),
)
def schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the Graph that /trace returns: the v1 contract."""
    return graph_json_schema()
