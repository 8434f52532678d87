"""Who may connect: room-scoped signed tokens, and the plain shared token where it is allowed (loopback)."""

from __future__ import annotations

import hmac
import logging
import math
import secrets
import time
from collections.abc import Callable

from aiohttp import web

from signaling.tokens import DEFAULT_LEEWAY_S, RoomClaims, TokenError, check_scope, decode_token, looks_signed


class RefusalLog:
    """Logs refused requests, at most one line per client address per ``interval_s``, so that a flood of bad
    requests cannot flood the log (or the terminal); the lines in between are counted in the next one."""

    def __init__(
        self,
        log: logging.Logger,
        interval_s: float = 60.0,
        max_addresses: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = log
        self._clock = clock
        self.interval_s = interval_s
        self._max_addresses = max_addresses
        self._seen: dict[str, tuple[float, int]] = {}  # address -> (last logged, refused since)

    def refused(self, address: str, reason: str) -> None:
        now = self._clock()
        logged_at, since = self._seen.get(address, (-math.inf, 0))
        if now - logged_at < self.interval_s:
            self._seen[address] = (logged_at, since + 1)
            return
        if len(self._seen) >= self._max_addresses:
            self._seen.clear()  # bounded: many addresses at once is itself a flood
        more = f" ({since} more refused from there in the last {self.interval_s:g} s)" if since else ""
        self._log.warning("refused %s: %s%s", address, reason, more)
        self._seen[address] = (now, 0)


def generate_token() -> str:
    """A fresh random token for a server started without one."""
    return secrets.token_urlsafe(24)


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


class RoomAuthenticator:
    """Admits signed tokens for the right room and role; the plain shared secret only if ``accept_shared``.

    Two steps, so a server can authenticate before it looks at anything else in the request: :meth:`authenticate`
    (is the token genuine and current?) and :meth:`scope_refusal` (does it admit this room and role?).
    """

    def __init__(self, secret: str, accept_shared: bool, leeway_s: float = DEFAULT_LEEWAY_S) -> None:
        self.shared = SharedTokenAuthenticator(secret)
        self._secret = secret
        self.accept_shared = accept_shared
        self.leeway_s = leeway_s

    def authenticate(self, presented: str | None) -> RoomClaims | None:
        """The claims of a genuine signed token, None for the shared secret (any room and role); else
        :class:`TokenError` with the reason to give the client."""
        if not presented:
            raise TokenError("missing token")
        if looks_signed(presented):
            return decode_token(self._secret, presented, self.leeway_s)
        if not self.shared.check(presented):
            raise TokenError("missing or wrong token")
        if not self.accept_shared:
            raise TokenError("the shared secret is not accepted here: present a signed token")
        return None

    @staticmethod
    def scope_refusal(claims: RoomClaims | None, room: str, role: str) -> str | None:
        """None if an authenticated token (``claims`` None: the shared secret) admits ``role`` into ``room``."""
        if claims is None:
            return None
        try:
            check_scope(claims, room, role)
        except TokenError as exc:
            return str(exc)
        return None
