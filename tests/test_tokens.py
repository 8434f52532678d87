"""Room-scoped expiring tokens (PyJWT, HS256 pinned): issuing, verification, every refusal the issues name, the
clock leeway, tokens of the earlier hand-written format, and a fuzzed parser."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator

import aiohttp
import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from avatar.main import main as avatar_main
from signaling.client import SignalingClient
from signaling.messages import Role
from signaling.server import SignalingService
from signaling.settings import SignalingSettings
from signaling.tokens import REQUIRED_CLAIMS, TokenError, issue_token, parse_ttl, verify_token

SECRET = "server-secret-0123456789-abcdefghijkl"  # 32+ bytes, as RFC 7518 asks of HS256 keys


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def claims(ttl_s: int = 600, **changes: object) -> dict[str, object]:
    """The claims issue_token puts in, for tokens built by hand (``None`` drops a claim)."""
    now = int(time.time())
    values: dict[str, object] = {
        "room": "meeting",
        "role": "local",
        "iat": now,
        "nbf": now,
        "exp": now + ttl_s,
        "jti": "abc123",
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


def old_format_token(secret: str, payload: dict[str, object]) -> str:
    """A token as the earlier hand-written HS256 code built it (compact JSON, header alg then typ)."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = part(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = part(json.dumps(payload, separators=(",", ":")).encode())
    signature = hmac.new(secret.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{part(signature)}"


@pytest.fixture
async def exposed_server() -> AsyncIterator[SignalingService]:
    """A server configured as off loopback: only signed tokens admit (it still binds 127.0.0.1 for the test)."""
    settings = SignalingSettings.load({"host": "127.0.0.1", "port": 0, "accept_shared_token": False})
    async with SignalingService(settings, SECRET) as service:
        yield service


async def admission(
    service: SignalingService, token: str, room: str = "meeting", role: str = "local"
) -> tuple[int, str]:
    """(status, error) of a plain GET to /ws: 426 means the token admits (only the upgrade is missing)."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{service.base_url}/ws",
            params={"room": room, "role": role},
            headers={"Authorization": f"Bearer {token}"},
            timeout=aiohttp.ClientTimeout(total=5),
        ) as response,
    ):
        return response.status, (await response.json()).get("error", "")


async def test_avatar_token_issues_a_token_for_its_room_and_role_only(
    exposed_server: SignalingService, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AVATAR_TOKEN", SECRET)
    assert avatar_main(["token", "--room", "meeting", "--role", "local", "--ttl", "12h"]) == 0
    token = capsys.readouterr().out.strip()
    claims = verify_token(SECRET, token, "meeting", "local")
    assert 12 * 3600 - 5 <= claims.expires_at - time.time() <= 12 * 3600
    assert await admission(exposed_server, token) == (426, "upgrade to a WebSocket to join")
    assert await admission(exposed_server, token, role="remote") == (401, "token is for the local role")
    assert await admission(exposed_server, token, room="other") == (401, "token is for another room")


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: issue_token(SECRET, "meeting", "local", 60, now=time.time() - 3600), "token expired"),
        (lambda: issue_token(SECRET, "meeting", "local", 7200, not_before=time.time() + 600), "token not valid yet"),
        (lambda: issue_token("another-secret", "meeting", "local", 60), "wrong token signature"),
        (
            lambda: f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64({'room': 'meeting', 'role': 'local', 'exp': 2**40})}.",
            "token algorithm not accepted (only HS256)",
        ),
        (
            lambda: b64({"alg": "HS512"}) + "." + issue_token(SECRET, "meeting", "local", 60).split(".", 1)[1],
            "token algorithm not accepted (only HS256)",
        ),
        (
            lambda: jwt.encode(claims(), SECRET, algorithm="HS512"),  # signed with the secret, but not HS256
            "token algorithm not accepted (only HS256)",
        ),
        (
            lambda: (
                b64({"alg": "RS256", "typ": "JWT"}) + "." + issue_token(SECRET, "meeting", "local", 60).split(".", 1)[1]
            ),
            "token algorithm not accepted (only HS256)",
        ),
        (lambda: SECRET, "the shared secret is not accepted here: present a signed token"),
        (lambda: "a.b.c", "malformed token"),
        (lambda: "x" * 5000, "missing or wrong token"),
    ],
    ids=[
        "expired",
        "not-yet-valid",
        "wrong-signature",
        "alg-none",
        "alg-hs512",
        "alg-hs512-signed",
        "alg-rs256",
        "shared-off-loopback",
        "junk",
        "huge",
    ],
)
async def test_refused_tokens_get_401_with_the_reason(exposed_server: SignalingService, make, reason: str) -> None:
    assert await admission(exposed_server, make()) == (401, reason)
    assert exposed_server.server.metrics.auth_failures_total == 1


async def test_shared_secret_still_works_on_loopback_and_peers_mint_their_own_tokens(
    signaling: SignalingService, exposed_server: SignalingService, token: str
) -> None:
    assert (await admission(signaling, token))[0] == 426  # loopback server: the plain shared token (foundation)
    async with SignalingClient(exposed_server.base_url, "meeting", Role.LOCAL, SECRET) as client:
        assert client.welcome is not None  # the client held the secret and presented a signed token instead


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_any_text_is_refused_with_a_token_error_only(text: str) -> None:
    with pytest.raises(TokenError):
        verify_token(SECRET, text, "meeting", "local")


VALID = issue_token(SECRET, "meeting", "local", 24 * 3600)  # valid for as long as any test run takes


@given(index=st.integers(0, len(VALID) - 1), replacement=st.sampled_from("ABCDEFQwxyz0189-_."))
@settings(max_examples=300, deadline=None)
def test_any_change_to_a_valid_token_is_refused(index: int, replacement: str) -> None:
    tampered = VALID[:index] + replacement + VALID[index + 1 :]
    if tampered == VALID:
        return
    with pytest.raises(TokenError):
        verify_token(SECRET, tampered, "meeting", "local")


@given(
    room=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", fullmatch=True),
    role=st.sampled_from(["remote", "local", "viewer"]),
    ttl=st.integers(1, 10**7),
)
@settings(max_examples=100, deadline=None)
def test_issued_tokens_verify_for_their_room_and_role(room: str, role: str, ttl: int) -> None:
    claims = verify_token(SECRET, issue_token(SECRET, room, role, ttl), room, role)
    assert (claims.room, claims.role) == (room, role)


@given(amount=st.integers(1, 10**5), unit=st.sampled_from(["", "s", "m", "h", "d"]))
def test_ttl_accepts_seconds_and_suffixes(amount: int, unit: str) -> None:
    assert parse_ttl(f"{amount}{unit}") == amount * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


@pytest.mark.parametrize("text", ["", "12x", "-5", "0", "h", "1.5.2h"])
def test_ttl_rejects_nonsense(text: str) -> None:
    with pytest.raises(ValueError):
        parse_ttl(text)


def test_avatar_token_without_the_secret_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AVATAR_TOKEN", raising=False)
    assert avatar_main(["token", "--room", "r", "--role", "viewer"]) == 2
    assert "set AVATAR_TOKEN" in capsys.readouterr().err


def test_tokens_of_the_earlier_hand_written_format_still_verify() -> None:
    token = old_format_token(SECRET, claims(jti=secrets.token_urlsafe(9)))
    assert verify_token(SECRET, token, "meeting", "local").room == "meeting"


@pytest.mark.parametrize("missing", REQUIRED_CLAIMS)
def test_a_token_without_a_required_claim_is_refused(missing: str) -> None:
    """Regression: the hand-written code took ``nbf`` from ``iat`` and accepted tokens without ``jti``."""
    token = jwt.encode(claims(**{missing: None}), SECRET, algorithm="HS256")
    with pytest.raises(TokenError, match=f"token lacks the {missing} claim"):
        verify_token(SECRET, token, "meeting", "local")


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ({"alg": "none", "typ": "JWT"}, "token algorithm not accepted (only HS256)"),
        ({"alg": "HS256", "typ": "JWT", "crit": ["exp"]}, "malformed token"),  # PyJWT: unsupported extension
        ({"alg": "HS256", "typ": "JWT", "b64": False, "crit": ["b64"]}, "malformed token"),
        ({"alg": "HS256", "typ": "JOSE+JSON"}, "token algorithm not accepted (only HS256)"),
    ],
    ids=["none-signed-with-the-secret", "crit", "unencoded-payload", "typ"],
)
def test_headers_other_than_hs256_jwt_are_refused_even_with_a_valid_hmac(header: dict, reason: str) -> None:
    signing_input = f"{b64(header)}.{b64(claims())}"
    signature = hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
    with pytest.raises(TokenError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        verify_token(SECRET, token, "meeting", "local")


def test_a_padded_spelling_of_a_valid_token_is_refused() -> None:
    """One spelling per token: base64 padding would make a second, equally valid, copy of a token."""
    header, payload, signature = VALID.split(".")
    assert len(signature) % 4 == 3  # 32 signature bytes: 43 characters, one '=' of padding possible
    with pytest.raises(TokenError, match="malformed token"):
        verify_token(SECRET, f"{header}.{payload}.{signature}=", "meeting", "local")


def test_a_tampered_signature_is_refused() -> None:
    header, payload, signature = VALID.split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    with pytest.raises(TokenError, match="wrong token signature"):
        verify_token(SECRET, f"{header}.{payload}.{flipped}", "meeting", "local")


@pytest.mark.parametrize(
    ("expired_s_ago", "leeway_s", "admitted"),
    [(2, 5, True), (8, 5, False), (20, 5, False), (2, 0, False), (8, 10, True)],
    ids=["2s-late-leeway-5", "8s-late-leeway-5", "20s-late-leeway-5", "2s-late-leeway-0", "8s-late-leeway-10"],
)
def test_expiry_is_enforced_within_the_leeway(expired_s_ago: int, leeway_s: float, admitted: bool) -> None:
    token = issue_token(SECRET, "meeting", "local", 60, now=time.time() - 60 - expired_s_ago)
    if admitted:
        assert verify_token(SECRET, token, "meeting", "local", leeway_s=leeway_s).room == "meeting"
    else:
        with pytest.raises(TokenError, match="token expired"):
            verify_token(SECRET, token, "meeting", "local", leeway_s=leeway_s)


async def test_the_server_leeway_is_a_setting_of_at_most_10_s_by_default() -> None:
    """Regression: a token was accepted up to 30 s after its expiry, whatever the server's operator wanted."""
    assert SignalingSettings.model_fields["token_leeway_s"].default <= 10
    late_by_20_s = issue_token(SECRET, "meeting", "local", 60, now=time.time() - 80)
    late_by_3_s = issue_token(SECRET, "meeting", "local", 60, now=time.time() - 63)
    default = SignalingSettings.load({"host": "127.0.0.1", "port": 0, "accept_shared_token": False})
    async with SignalingService(default, SECRET) as service:
        assert await admission(service, late_by_20_s) == (401, "token expired")
        assert (await admission(service, late_by_3_s))[0] == 426
    strict = SignalingSettings.load({"host": "127.0.0.1", "port": 0, "accept_shared_token": False, "token_leeway_s": 0})
    async with SignalingService(strict, SECRET) as service:
        assert await admission(service, late_by_3_s) == (401, "token expired")


def test_avatar_token_help_states_the_leeway(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        avatar_main(["token", "--help"])
    assert "--token-leeway (5 s unless told otherwise)" in " ".join(capsys.readouterr().out.split())


def test_peers_mint_tokens_that_tolerate_a_clock_running_ahead() -> None:
    """With a 5 s leeway, a laptop whose clock is 30 s ahead of the server must still be admitted."""
    from signaling.client import connection_token

    minted = connection_token(SECRET, "meeting", Role.LOCAL)
    token_claims = jwt.decode(minted, options={"verify_signature": False})
    assert token_claims["nbf"] <= time.time() - 30 and token_claims["exp"] >= time.time() + 500
