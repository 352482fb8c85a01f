"""HTML pages: the explorer and the embeddable player."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.client_identity import current_or_new_session, keep_session
from app.lessons import DEFAULT_LESSON
from app.resources import templates_dir

router = APIRouter(tags=["pages"])
templates = Jinja2Templates(directory=str(templates_dir()))


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def explorer(request: Request) -> HTMLResponse:
    """The explorer: editor, gallery, graph, player, inspector."""
    return _page(request, "index.html")


@router.get("/embed", response_class=HTMLResponse, include_in_schema=False)
def embed(request: Request) -> HTMLResponse:
    """The graph and player only, sized to an iframe, with a link back to the explorer."""
    return _page(request, "embed.html")


def _page(request: Request, template: str) -> HTMLResponse:
    """A page with its session: the token in a meta tag for the API calls, and the cookie."""
    token = current_or_new_session(request)
    response = templates.TemplateResponse(
        request, template, {"default_example": DEFAULT_LESSON, "session_token": token}
    )
    keep_session(request, response, token)
    return response
