"""Room-scoped, expiring tokens: compact JWTs signed with HMAC-SHA256 by the server's secret (``AVATAR_TOKEN``).

The algorithm is pinned: a header that is not exactly HS256 (``none`` included) is refused before any
signature work. Claims: ``room``, ``role``, ``exp``, ``nbf``, ``iat``, ``jti``. A token only admits its own
room and role; peers that hold the secret mint a short-lived one per connection, so the secret itself never
crosses the network.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

MAX_TOKEN_CHARS = 2048
ROLES = ("remote", "local", "viewer")
HEADER = {"alg": "HS256", "typ": "JWT"}
_TTL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class TokenError(ValueError):
    """Why a presented token does not admit this connection (safe to tell the client)."""


@dataclass(frozen=True)
class RoomClaims:
    room: str
    role: str
    expires_at: int
    not_before: int
    token_id: str


def parse_ttl(text: str) -> int:
    """``"12h"``, ``"30m"``, ``"90s"``, ``"2d"`` or plain seconds -> seconds (at least 1)."""
    match = _TTL.match(str(text))
    if not match:
        raise ValueError(f"TTL {text!r} is not seconds or a number with s/m/h/d, e.g. 12h")
    seconds = int(float(match.group(1)) * _UNITS[match.group(2)])
    if seconds < 1:
        raise ValueError(f"TTL {text!r} is shorter than one second")
    return seconds


def looks_signed(token: str) -> bool:
    """Signed tokens have three dot-separated parts; shared tokens (token_urlsafe) have no dots."""
    return token.count(".") == 2


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise TokenError("malformed token")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TokenError("malformed token") from exc
    if _b64encode(raw) != text:  # non-canonical spellings (stray low bits) would make tokens malleable
        raise TokenError("malformed token")
    return raw


def _sign(secret: str, signing_input: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), signing_input, hashlib.sha256).digest()


def issue_token(
    secret: str, room: str, role: str, ttl_s: int, now: float | None = None, not_before: float | None = None
) -> str:
    """A token admitting ``role`` into ``room`` for ``ttl_s`` seconds."""
    if not secret:
        raise ValueError("no secret to sign with: set AVATAR_TOKEN")
    if role not in ROLES:
        raise ValueError(f"role must be one of: {', '.join(ROLES)}")
    issued = int(time.time() if now is None else now)
    claims = {
        "room": room,
        "role": role,
        "iat": issued,
        "nbf": int(issued if not_before is None else not_before),
        "exp": issued + int(ttl_s),
        "jti": secrets.token_urlsafe(9),
    }
    header = _b64encode(json.dumps(HEADER, separators=(",", ":")).encode())
    payload = _b64encode(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    return f"{header}.{payload}.{_b64encode(_sign(secret, signing_input))}"


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise TokenError("malformed token") from exc
    if not isinstance(value, dict):
        raise TokenError("malformed token")
    return value


def verify_token(
    secret: str, token: str, room: str, role: str, now: float | None = None, leeway_s: int = 30
) -> RoomClaims:
    """The token's claims if it admits ``role`` into ``room`` now; otherwise :class:`TokenError` saying why."""
    if len(token) > MAX_TOKEN_CHARS or not looks_signed(token):
        raise TokenError("malformed token")
    header_b64, payload_b64, signature_b64 = token.split(".")
    header = _json_object(_b64decode(header_b64))
    if header.get("alg") != "HS256" or header.get("typ", "JWT") != "JWT" or "crit" in header:
        raise TokenError("token algorithm not accepted (only HS256)")
    expected = _sign(secret, f"{header_b64}.{payload_b64}".encode("ascii"))
    if not hmac.compare_digest(expected, _b64decode(signature_b64)):
        raise TokenError("wrong token signature")
    claims = _json_object(_b64decode(payload_b64))
    try:
        parsed = RoomClaims(
            room=str(claims["room"]),
            role=str(claims["role"]),
            expires_at=int(claims["exp"]),
            not_before=int(claims.get("nbf", claims["iat"])),
            token_id=str(claims.get("jti", "")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise TokenError("token lacks room, role or expiry") from exc
    current = time.time() if now is None else now
    if current > parsed.expires_at + leeway_s:
        raise TokenError("token expired")
    if current + leeway_s < parsed.not_before:
        raise TokenError("token not valid yet")
    if parsed.room != room:
        raise TokenError("token is for another room")
    if parsed.role != role:
        raise TokenError(f"token is for the {parsed.role} role")
    return parsed
