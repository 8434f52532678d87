"""Room-scoped expiring tokens: issuing, verification, every refusal the issue names, and a fuzzed parser."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peer_local.cli import main as avatar_main
from signaling.client import SignalingClient
from signaling.messages import Role
from signaling.server import SignalingService
from signaling.settings import SignalingSettings
from signaling.tokens import TokenError, issue_token, parse_ttl, verify_token

SECRET = "server-secret-0123456789"


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


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
        (lambda: SECRET, "the shared secret is not accepted here: present a signed token"),
        (lambda: "a.b.c", "malformed token"),
        (lambda: "x" * 5000, "missing or wrong token"),
    ],
    ids=["expired", "not-yet-valid", "wrong-signature", "alg-none", "alg-hs512", "shared-off-loopback", "junk", "huge"],
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


ISSUED_AT = 1_800_000_000
VALID = issue_token(SECRET, "meeting", "local", 600, now=ISSUED_AT)


@given(index=st.integers(0, len(VALID) - 1), replacement=st.sampled_from("ABCDEFQwxyz0189-_."))
@settings(max_examples=300, deadline=None)
def test_any_change_to_a_valid_token_is_refused(index: int, replacement: str) -> None:
    tampered = VALID[:index] + replacement + VALID[index + 1 :]
    if tampered == VALID:
        return
    with pytest.raises(TokenError):
        verify_token(SECRET, tampered, "meeting", "local", now=ISSUED_AT + 1)


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
