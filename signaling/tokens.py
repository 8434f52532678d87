"""Room-scoped, expiring tokens: compact JWTs signed with HMAC-SHA256 by the server's secret (``AVATAR_TOKEN``).

Signing and verification are PyJWT's, with the algorithm pinned: a header that is not exactly HS256 (``none``
included) is refused before any signature work. Required claims: ``room``, ``role``, ``exp``, ``nbf``, ``iat``,
``jti`` (the format the earlier hand-written implementation issued, so its tokens still verify). A token only
admits its own room and role; peers that hold the secret mint a short-lived one per connection, so the secret
itself never crosses the network. Clocks may differ by ``leeway_s`` (default 5 s): an expired token is accepted
for that long after ``exp``.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass

import jwt

MAX_TOKEN_CHARS = 2048
ROLES = ("remote", "local", "viewer")
ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("exp", "nbf", "iat", "room", "role", "jti")
DEFAULT_LEEWAY_S = 5.0  # how long after ``exp`` (and before ``nbf``/``iat``) a token is still accepted
# three base64url segments without padding: one spelling per token (padding and stray characters make copies)
_COMPACT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
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
    return jwt.encode(claims, secret, algorithm=ALGORITHM, headers={"typ": "JWT"})


def _check_header(token: str) -> None:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise TokenError("malformed token") from exc
    if header.get("alg") != ALGORITHM or header.get("typ", "JWT") != "JWT" or "crit" in header or "b64" in header:
        raise TokenError("token algorithm not accepted (only HS256)")


def decode_token(secret: str, token: str, leeway_s: float = DEFAULT_LEEWAY_S) -> RoomClaims:
    """The claims of a token signed with ``secret`` and valid now (any room, any role); else :class:`TokenError`."""
    if len(token) > MAX_TOKEN_CHARS or not _COMPACT.match(token):
        raise TokenError("malformed token")
    _check_header(token)
    options: jwt.types.Options = {"require": list(REQUIRED_CLAIMS), "verify_aud": False, "verify_iss": False}
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options=options, leeway=leeway_s)
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("token expired") from exc
    except jwt.ImmatureSignatureError as exc:
        raise TokenError("token not valid yet") from exc
    except jwt.InvalidSignatureError as exc:
        raise TokenError("wrong token signature") from exc
    except jwt.InvalidAlgorithmError as exc:
        raise TokenError("token algorithm not accepted (only HS256)") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise TokenError(f"token lacks the {exc.claim} claim") from exc
    except jwt.InvalidTokenError as exc:
        raise TokenError("malformed token") from exc
    room, role, token_id = claims["room"], claims["role"], claims["jti"]
    if not all(isinstance(value, str) and value for value in (room, role, token_id)):
        raise TokenError("token room, role and jti must be non-empty strings")
    return RoomClaims(
        room=room, role=role, expires_at=int(claims["exp"]), not_before=int(claims["nbf"]), token_id=token_id
    )


def check_scope(claims: RoomClaims, room: str, role: str) -> None:
    """:class:`TokenError` unless the token is for ``room`` and ``role``."""
    if claims.room != room:
        raise TokenError("token is for another room")
    if claims.role != role:
        raise TokenError(f"token is for the {claims.role} role")


def verify_token(secret: str, token: str, room: str, role: str, leeway_s: float = DEFAULT_LEEWAY_S) -> RoomClaims:
    """The token's claims if it admits ``role`` into ``room`` now; otherwise :class:`TokenError` saying why."""
    claims = decode_token(secret, token, leeway_s)
    check_scope(claims, room, role)
    return claims
