"""Assemble the FastAPI application: settings, the trace service, routers, static files."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from app import __version__, error_handlers
from app.client_identity import SESSION_HEADER, SessionSigner
from app.config import Settings, get_settings
from app.middleware import BodySizeLimit, ForwardedFor
from app.resources import static_dir
from app.routes import api, api_docs, pages
from app.sandbox.pool import WorkerParentHandle
from app.service import TraceService
from app.session_keys import SharedSessionKeys
from app.shared_state import RedisLink
from app.tracing import RECORDING
from app.web_headers import SecurityHeaders


def create_app(settings: Settings | None = None) -> FastAPI:
    """The explorer's web application; its worker pool starts with the app."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = (
            WorkerParentHandle(settings.pool_settings(), RECORDING) if settings.isolation else None
        )
        if pool is not None:
            await run_in_threadpool(pool.start)
        shared = RedisLink(settings.redis_url) if settings.redis_url else None
        app.state.service = service = TraceService(settings, pool, shared)
        if shared is not None:
            if not settings.session_key:  # a configured key is the same everywhere already
                SharedSessionKeys(app.state.sessions, shared, settings.session_key_hours)
            await shared.start()
        try:
            yield
        finally:
            if shared is not None:
                await shared.close()
            await run_in_threadpool(service.close)
            if pool is not None:
                pool.close()

    # /docs is served by api_docs with a vendored Swagger UI; ReDoc would load from a CDN.
    # No slash redirects: their Location would be built from the client's Host header.
    app = FastAPI(
        title="Autograd Explorer",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,
    )
    error_handlers.install(app)
    app.state.sessions = SessionSigner.from_setting(settings.session_key)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", SESSION_HEADER],
            expose_headers=["Retry-After", "Content-Disposition"],
            max_age=600,
        )
    app.add_middleware(ForwardedFor, proxies=settings.proxy_networks())
    app.add_middleware(SecurityHeaders)  # outermost: every answer carries the headers
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(api_docs.router)
    app.mount("/static", StaticFiles(directory=str(static_dir())), name="static")
    return app
