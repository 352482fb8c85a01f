"""Who a request comes from: a signed anonymous session (cookie or token) and its address."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from starlette.requests import HTTPConnection
from starlette.responses import Response

SESSION_COOKIE = "ae_session"
SESSION_HEADER = "X-AE-Session"
SESSION_MAX_AGE = 30 * 24 * 3600  # a browser keeps its session for a month
_ID_BYTES = 16
_MAX_TOKEN = 200


@dataclass(frozen=True)
class Client:
    """The sender of a request: its verified session id (None without one) and its address."""

    address: str | None
    session: str | None = None

    @property
    def key(self) -> str | None:
        """The unit of per-client caps and of the answer cache: the session, else the address."""
        if self.session is not None:
            return f"session:{self.session}"
        return f"address:{self.address}" if self.address is not None else None


class SessionSigner:
    """Issues and verifies session tokens `<id>.<HMAC-SHA256 of id>`: anyone may get one, no
    one can forge or alter one, and the server keeps no state for them. New tokens are signed
    with the first key; a token signed with any of the keys is genuine (keys rotate)."""

    def __init__(self, key: bytes) -> None:
        self.own_key = key
        self._keys = [key]

    @classmethod
    def from_setting(cls, key: str) -> SessionSigner:
        """A signer with the configured key, or a random one (sessions end with a restart)."""
        return cls(key.encode() if key else secrets.token_bytes(32))

    def use_keys(self, keys: list[bytes]) -> None:
        """Sign with keys[0] from now on and accept a token signed with any of them."""
        if keys:
            self._keys = list(keys)

    def _signature(self, session: str, key: bytes) -> str:
        digest = hmac.new(key, session.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def issue(self) -> str:
        """A new session's token."""
        session = secrets.token_urlsafe(_ID_BYTES)
        return f"{session}.{self._signature(session, self._keys[0])}"

    def verify(self, token: str | None) -> str | None:
        """The session id of a genuine token, else None."""
        if not token or len(token) > _MAX_TOKEN or token.count(".") != 1:
            return None
        session, signature = token.split(".")
        if not session:
            return None
        for key in self._keys:
            if hmac.compare_digest(signature, self._signature(session, key)):
                return session
        return None


def session_token(connection: HTTPConnection) -> str | None:
    """The session token a request carries (the header wins over the cookie), if genuine."""
    signer: SessionSigner = connection.app.state.sessions
    for token in (connection.headers.get(SESSION_HEADER), connection.cookies.get(SESSION_COOKIE)):
        if signer.verify(token) is not None:
            return token
    return None


def client_of(connection: HTTPConnection) -> Client:
    """The Client of a request."""
    signer: SessionSigner = connection.app.state.sessions
    token = session_token(connection)
    address = connection.client.host if connection.client else None
    return Client(address=address, session=signer.verify(token) if token else None)


def current_or_new_session(connection: HTTPConnection) -> str:
    """The request's genuine session token, or a new one."""
    return session_token(connection) or connection.app.state.sessions.issue()


def keep_session(connection: HTTPConnection, response: Response, token: str) -> None:
    """Set the session cookie where the request did not carry it (HttpOnly: no script reads
    it; SameSite=Lax: requests that another site's page makes do not carry it)."""
    if connection.cookies.get(SESSION_COOKIE) != token:
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=SESSION_MAX_AGE,
            httponly=True,
            samesite="lax",
            secure=connection.url.scheme == "https",
        )
