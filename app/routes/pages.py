"""HTML pages: the explorer and the embeddable player."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.examples import DEFAULT_EXAMPLE
from app.resources import templates_dir

router = APIRouter(tags=["pages"])
templates = Jinja2Templates(directory=str(templates_dir()))


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def explorer(request: Request) -> HTMLResponse:
    """The explorer: editor, gallery, graph, player, inspector."""
    return templates.TemplateResponse(request, "index.html", {"default_example": DEFAULT_EXAMPLE})


@router.get("/embed", response_class=HTMLResponse, include_in_schema=False)
def embed(request: Request) -> HTMLResponse:
    """The graph and player only, sized to an iframe, with a link back to the explorer."""
    return templates.TemplateResponse(request, "embed.html", {"default_example": DEFAULT_EXAMPLE})
