"""Who may connect: bearer tokens checked in constant time."""

from __future__ import annotations

import hmac
import secrets

from aiohttp import web


def generate_token() -> str:
    """A fresh random token for a server started without one."""
    return secrets.token_urlsafe(24)


def mask_secret(secret: str) -> str:
    """Show just enough of a secret to recognise it in logs."""
    return secret[:4] + "…" if len(secret) > 8 else "…"


def request_token(request: web.Request) -> str | None:
    """The token from ``Authorization: Bearer`` or, for browsers, the ``token`` query parameter."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query.get("token") or None


class SharedTokenAuthenticator:
    """Accepts exactly one shared secret token."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("the shared token must not be empty")
        self._token = token.encode("utf-8")

    def check(self, presented: str | None) -> bool:
        """Constant-time comparison; a missing token never matches."""
        candidate = (presented or "").encode("utf-8")
        return hmac.compare_digest(candidate, self._token) and presented is not None
