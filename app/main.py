"""Assemble the FastAPI application: routers and static files."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app import __version__
from app.resources import static_dir
from app.routes import api, pages


def create_app() -> FastAPI:
    """The explorer's web application."""
    app = FastAPI(title="Autograd Explorer", version=__version__)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=str(static_dir())), name="static")
    return app
