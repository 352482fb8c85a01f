"""Refuse requests that another site's page makes a browser send to an endpoint that runs work."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from fastapi import Request

from app.error_handlers import http_error
from app.errors import failure


def cross_site_reason(headers: Mapping[str, str], allowed_origins: Sequence[str]) -> str | None:
    """Why a request comes from another site's page (None when it comes from ours, from a
    site allowed by CORS, from a person's own navigation, or from a client that is no browser).

    An `<img>` or a script on another site sends Sec-Fetch-Site: cross-site (and a fetch an
    Origin); a link a person follows is a user-activated top-level navigation and may pass."""
    origin = headers.get("origin")
    if origin is not None:
        if _is_ours(origin, headers.get("host", "")) or origin in allowed_origins:
            return None
        if "*" in allowed_origins and origin != "null":
            return None
        return f"a page of {origin[:100]!r} may not make this server run programs"
    site = headers.get("sec-fetch-site")
    if site in ("cross-site", "same-site"):
        followed_link = (
            headers.get("sec-fetch-mode") == "navigate"
            and headers.get("sec-fetch-dest") == "document"
            and headers.get("sec-fetch-user") == "?1"
        )
        if not followed_link:
            return "another site's page may not make this server run programs"
    return None


def _is_ours(origin: str, host: str) -> bool:
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:
        return False
    return bool(netloc) and netloc.lower() == host.strip().lower()


def same_site_only(request: Request) -> None:
    """A route dependency: 403 CrossSite for a request another site's page made."""
    allowed = request.app.state.service.settings.cors_origins
    reason = cross_site_reason(request.headers, allowed)
    if reason is not None:
        raise http_error(
            failure(
                "CrossSite",
                f"{reason}: open the explorer itself, or ask its operator to add "
                "your site to AE_CORS_ORIGINS",
            )
        )
