"""The OpenAPI page at /docs, with Swagger UI served from static/vendor (no CDN)."""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from app.web_headers import content_policy

router = APIRouter(tags=["pages"])
SWAGGER_UI = "/static/vendor/swagger_ui"
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def inline_script_hashes(html: str) -> list[str]:
    """CSP sources ('sha256-...') of each inline script of a page."""
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in INLINE_SCRIPT.findall(html)
    ]


@router.get("/docs", response_class=HTMLResponse, include_in_schema=False)
def api_docs(request: Request) -> HTMLResponse:
    """Swagger UI for /openapi.json: every endpoint with its examples, to try out."""
    page = get_swagger_ui_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} API",
        swagger_js_url=f"{SWAGGER_UI}/swagger-ui-bundle.js",
        swagger_css_url=f"{SWAGGER_UI}/swagger-ui.css",
        swagger_favicon_url="data:,",
        # no validator badge: it would send the document to validator.swagger.io
        swagger_ui_parameters={"validatorUrl": None, "defaultModelsExpandDepth": 0},
    )
    # Swagger UI starts from one inline script: allowed by its hash, and nothing else inline.
    hashes = " ".join(inline_script_hashes(bytes(page.body).decode()))
    policy = content_policy("/docs").replace("script-src 'self'", f"script-src 'self' {hashes}")
    page.headers["Content-Security-Policy"] = policy
    return page
