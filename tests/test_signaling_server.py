"""Signaling server behaviour over real sockets on 127.0.0.1: auth, rooms, relay, bad input, liveness."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp
import pytest

from signaling.auth import RefusalLog
from signaling.server import SignalingService
from signaling.settings import SignalingSettings

SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


async def join(
    service: SignalingService, token: str, role: str, room: str = "r1", **kwargs: Any
) -> aiohttp.ClientWebSocketResponse:
    session = aiohttp.ClientSession()
    ws = await session.ws_connect(
        f"{service.ws_url}?room={room}&role={role}", headers={"Authorization": f"Bearer {token}"}, **kwargs
    )
    ws._test_session = session  # type: ignore[attr-defined]
    return ws


async def leave(ws: aiohttp.ClientWebSocketResponse) -> None:
    await ws.close()
    await ws._test_session.close()  # type: ignore[attr-defined]


async def receive(
    ws: aiohttp.ClientWebSocketResponse, kind: str | None = None, within_s: float = 5.0
) -> dict[str, Any]:
    """Next JSON message (of ``kind`` if given), bounded in time."""
    async with asyncio.timeout(within_s):
        while True:
            message = await ws.receive()
            assert message.type == aiohttp.WSMsgType.TEXT, f"expected text, got {message.type} {message.data}"
            data: dict[str, Any] = json.loads(message.data)
            if kind is None or data["type"] == kind:
                return data


async def get(service: SignalingService, path: str, **kwargs: Any) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(service.base_url + path, **kwargs) as response:
        return response.status, response.content_type, await response.text()


async def test_healthz_reports_status_version_uptime_rooms_and_peers(signaling: SignalingService, token: str) -> None:
    ws = await join(signaling, token, "remote")
    await receive(ws, "welcome")
    status, content_type, body = await get(signaling, "/healthz")
    health = json.loads(body)
    assert status == 200 and content_type == "application/json"
    assert health["status"] == "ok"
    assert health["version"] and health["uptime_s"] >= 0
    assert health["rooms"] == 1 and health["peers"] == 1
    await leave(ws)


@pytest.mark.parametrize("headers,query", [({}, ""), ({"Authorization": "Bearer wrong"}, ""), ({}, "&token=wrong")])
async def test_missing_or_wrong_token_gets_401_before_upgrade(
    signaling: SignalingService, headers: dict[str, str], query: str
) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await session.ws_connect(f"{signaling.ws_url}?room=r1&role=local{query}", headers=headers)
    assert caught.value.status == 401
    status, _, metrics = await get(signaling, "/metrics")
    assert "avatar_signaling_auth_failures_total 1" in metrics


async def test_browser_token_in_query_is_accepted(signaling: SignalingService, token: str) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{signaling.ws_url}?room=r1&role=viewer&token={token}") as ws,
    ):
        welcome = await receive(ws, "welcome")
    assert welcome["role"] == "viewer" and welcome["room"] == "r1"


async def test_offer_and_answer_are_relayed_with_sender_id(signaling: SignalingService, token: str) -> None:
    remote = await join(signaling, token, "remote")
    remote_id = (await receive(remote, "welcome"))["peer_id"]
    local = await join(signaling, token, "local")
    welcome = await receive(local, "welcome")
    assert welcome["peers"] == [{"peer_id": remote_id, "role": "remote"}]
    joined = await receive(remote, "peer-joined")
    assert joined == {"type": "peer-joined", "peer_id": welcome["peer_id"], "role": "local"}

    await local.send_json({"type": "offer", "to": remote_id, "sdp": SDP, "from": "spoofed"})
    offer = await receive(remote, "offer")
    assert offer["from"] == welcome["peer_id"] and offer["sdp"] == SDP
    await remote.send_json({"type": "answer", "to": welcome["peer_id"], "sdp": SDP})
    answer = await receive(local, "answer")
    assert answer["from"] == remote_id
    await remote.send_json(
        {
            "type": "candidate",
            "to": welcome["peer_id"],
            "candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host",
            "sdpMid": "0",
            "sdpMLineIndex": 0,
        }
    )
    assert (await receive(local, "candidate"))["sdpMid"] == "0"
    _, _, metrics = await get(signaling, "/metrics")
    assert "avatar_signaling_messages_relayed_total 3" in metrics
    await leave(local)
    await leave(remote)


async def test_second_remote_in_a_room_is_rejected_with_an_error(signaling: SignalingService, token: str) -> None:
    first = await join(signaling, token, "remote")
    await receive(first, "welcome")
    second = await join(signaling, token, "remote")
    error = await receive(second, "error")
    assert error["code"] == "role-taken" and "already has a remote" in error["message"]
    closing = await second.receive(timeout=5)
    assert closing.type == aiohttp.WSMsgType.CLOSE and second.close_code == 4409
    other_room = await join(signaling, token, "remote", room="r2")
    assert (await receive(other_room, "welcome"))["room"] == "r2"
    for ws in (first, second, other_room):
        await leave(ws)


async def test_viewers_cannot_signal_each_other(signaling: SignalingService, token: str) -> None:
    a = await join(signaling, token, "viewer")
    await receive(a, "welcome")
    b = await join(signaling, token, "viewer")
    b_id = (await receive(b, "welcome"))["peer_id"]
    await a.send_json({"type": "offer", "to": b_id, "sdp": SDP})
    assert (await receive(a, "error"))["code"] == "not-allowed"
    await a.send_json({"type": "offer", "to": "nobody", "sdp": SDP})
    assert (await receive(a, "error"))["code"] == "no-such-peer"
    await leave(a)
    await leave(b)


@pytest.mark.parametrize(
    "frame,code",
    [
        ("{not json", "bad-json"),
        ("[1, 2]", "bad-message"),
        ('{"type": "shout", "to": "x"}', "unknown-type"),
        ('{"type": "offer", "to": "x", "sdp": "not an sdp"}', "bad-message"),
        ('{"type": "offer", "sdp": "v=0"}', "bad-message"),
        ('{"type": "candidate", "to": "x", "sdpMLineIndex": -3}', "bad-message"),
    ],
)
async def test_bad_messages_get_error_replies_and_the_connection_stays_up(
    signaling: SignalingService, token: str, frame: str, code: str
) -> None:
    ws = await join(signaling, token, "local")
    await receive(ws, "welcome")
    await ws.send_str(frame)
    error = await receive(ws, "error")
    assert error["code"] == code and error["message"]
    await ws.send_json({"type": "ping", "id": 7})
    assert await receive(ws, "pong") == {"type": "pong", "id": 7}
    status, _, metrics = await get(signaling, "/metrics")
    assert status == 200 and f'avatar_signaling_messages_rejected_total{{reason="{code}"}} 1' in metrics
    await leave(ws)


async def test_message_over_64_kib_gets_too_large_and_huge_frame_closes_1009(
    signaling: SignalingService, token: str
) -> None:
    ws = await join(signaling, token, "local")
    await receive(ws, "welcome")
    await ws.send_json({"type": "offer", "to": "x", "sdp": "v=0" + "a" * 70_000})
    assert (await receive(ws, "error"))["code"] == "too-large"
    await ws.send_json({"type": "ping", "id": 1})
    assert (await receive(ws, "pong"))["id"] == 1

    await ws.send_str("x" * (2 * 1024 * 1024))
    closing = await ws.receive(timeout=5)
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert ws.close_code == 1009
    status, _, body = await get(signaling, "/healthz")
    assert status == 200 and json.loads(body)["peers"] == 0
    await leave(ws)


async def test_peer_left_is_announced_when_a_socket_dies(signaling: SignalingService, token: str) -> None:
    remote = await join(signaling, token, "remote")
    await receive(remote, "welcome")
    local = await join(signaling, token, "local")
    local_id = (await receive(local, "welcome"))["peer_id"]
    transport = local._response.connection.transport  # type: ignore[union-attr]
    assert transport is not None
    transport.abort()  # the socket dies: no close handshake
    left = await receive(remote, "peer-left")
    assert left == {"type": "peer-left", "peer_id": local_id, "role": "local"}
    await leave(remote)
    await local._test_session.close()  # type: ignore[attr-defined]


async def test_heartbeat_drops_a_silent_peer(token: str) -> None:
    settings = SignalingSettings.load({"host": "127.0.0.1", "port": 0, "heartbeat_s": 0.3})
    async with SignalingService(settings, token) as service:
        remote = await join(service, token, "remote")
        await receive(remote, "welcome")
        # autoping off: this client never answers the server's pings, like a frozen laptop
        silent = await join(service, token, "local", autoping=False)
        await receive(silent, "welcome")
        left = await receive(remote, "peer-left", within_s=5.0)
        assert left["role"] == "local"
        await leave(remote)
        await leave(silent)


async def test_connections_per_address_are_limited(token: str) -> None:
    settings = SignalingSettings.load({"host": "127.0.0.1", "port": 0, "max_connections_per_address": 2})
    async with SignalingService(settings, token) as service:
        sockets = [await join(service, token, "viewer") for _ in range(2)]
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
                await session.ws_connect(f"{service.ws_url}?room=r1&role=viewer&token={token}")
        assert caught.value.status == 429
        await leave(sockets.pop())
        sockets.append(await join(service, token, "viewer"))  # a slot is free again
        for ws in sockets:
            await leave(ws)


async def test_message_flood_is_rate_limited(token: str) -> None:
    settings = SignalingSettings.load({"host": "127.0.0.1", "port": 0, "messages_per_second": 1, "message_burst": 5})
    async with SignalingService(settings, token) as service:
        ws = await join(service, token, "local")
        await receive(ws, "welcome")
        for i in range(10):
            await ws.send_json({"type": "ping", "id": i})
        replies = [await receive(ws) for _ in range(10)]
        assert [r["type"] for r in replies].count("pong") == 5
        assert any(r.get("code") == "rate-limited" for r in replies)
        await leave(ws)


@pytest.mark.parametrize("query", ["room=&role=local", "room=r1&role=admin", "room=../x&role=local"])
async def test_bad_room_or_role_is_refused_with_400(signaling: SignalingService, token: str, query: str) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await session.ws_connect(f"{signaling.ws_url}?{query}", headers={"Authorization": f"Bearer {token}"})
    assert caught.value.status == 400


async def test_shutdown_says_bye_to_every_peer(token: str) -> None:
    settings = SignalingSettings.load({"host": "127.0.0.1", "port": 0})
    service = SignalingService(settings, token)
    await service.start()
    ws = await join(service, token, "remote")
    welcome = await receive(ws, "welcome")
    await service.stop()
    bye = await receive(ws, "bye")
    assert bye == {"type": "bye", "to": welcome["peer_id"], "reason": "server-shutdown"}
    closing = await ws.receive(timeout=5)
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    await leave(ws)


async def test_index_page_is_served(signaling: SignalingService) -> None:
    status, content_type, body = await get(signaling, "/")
    assert status == 200 and content_type == "text/html"
    assert "<!doctype html>" in body.lower()


async def test_a_plain_get_of_ws_checks_the_token_without_joining(signaling: SignalingService, token: str) -> None:
    status, _, body = await get(signaling, f"/ws?room=r1&role=viewer&token={token}")
    assert status == 426 and "upgrade" in json.loads(body)["error"]
    status, _, _ = await get(signaling, "/ws?room=r1&role=viewer&token=wrong")
    assert status == 401


async def test_ice_servers_are_advertised_with_short_lived_turn_credentials(token: str) -> None:
    import base64
    import hashlib
    import hmac
    import time

    settings = SignalingSettings.load(
        {
            "host": "127.0.0.1",
            "port": 0,
            "turn_secret": "s3cret",
            "turn_ttl_s": 600,
            "ice_servers": ["stun:127.0.0.1:3478", "turn:127.0.0.1:3478?transport=udp"],
        }
    )
    async with SignalingService(settings, token) as service:
        ws = await join(service, token, "local")
        welcome = await receive(ws, "welcome")
        await leave(ws)
    stun, turn = welcome["ice_servers"]
    assert stun == {"urls": "stun:127.0.0.1:3478"}
    expiry, peer = turn["username"].split(":")
    assert peer == welcome["peer_id"] and 590 <= int(expiry) - time.time() <= 600
    expected = base64.b64encode(hmac.new(b"s3cret", turn["username"].encode(), hashlib.sha1).digest()).decode()
    assert turn["credential"] == expected and "s3cret" not in json.dumps(welcome)


@pytest.mark.parametrize(
    "query",
    ["", "room=r1", "role=local", "room=r1&role=local", "room=../x&role=admin", "room=&role="],
    ids=["nothing", "room-only", "role-only", "valid-query", "bad-room-and-role", "empty-room-and-role"],
)
async def test_without_a_valid_token_every_ws_request_gets_the_same_401(
    signaling: SignalingService, query: str
) -> None:
    """Regression: a wrong token without room or role got 400, telling the caller what the query must hold."""
    answers = set()
    for token_part in ("token=wrong", "token=a.b.c"):
        status, _, body = await get(signaling, f"/ws?{token_part}&{query}")
        answers.add((status, json.loads(body)["error"]))
    assert answers == {(401, "missing or wrong token"), (401, "malformed token")}
    status, _, body = await get(signaling, f"/ws?{query}", headers={"Authorization": "Bearer wrong"})
    assert (status, json.loads(body)["error"]) == (401, "missing or wrong token")


async def test_an_authenticated_request_learns_the_query_format(signaling: SignalingService, token: str) -> None:
    status, _, body = await get(signaling, f"/ws?token={token}")
    assert status == 400 and "room must be" in json.loads(body)["error"]


async def test_the_token_is_checked_before_the_shutdown_notice(token: str) -> None:
    settings = SignalingSettings.load({"host": "127.0.0.1", "port": 0})
    async with SignalingService(settings, token) as service:
        await service.server.shutdown()  # says bye to nobody; the server now refuses new peers
        assert (await get(service, "/ws?room=r1&role=local&token=wrong"))[0] == 401
        assert (await get(service, f"/ws?room=r1&role=local&token={token}"))[0] == 503


async def test_a_flood_of_refused_requests_logs_one_line_per_address(
    signaling: SignalingService, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: every refused request logged a warning, so anyone could flood the box's log."""
    caplog.set_level(logging.WARNING, logger="signaling.app")
    for _ in range(50):
        assert (await get(signaling, "/ws?room=r1&role=local&token=wrong"))[0] == 401
    assert signaling.server.metrics.auth_failures_total == 50  # all counted...
    assert [r.getMessage() for r in caplog.records if r.name == "signaling.app"] == [
        "refused 127.0.0.1: missing or wrong token"
    ]  # ...one logged


def test_the_refusal_log_reports_what_it_left_out(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    log = RefusalLog(logging.getLogger("test.refusals"), interval_s=60, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="test.refusals"):
        for second in range(0, 130):  # one refusal a second from one address, one from another
            now[0] = float(second)
            log.refused("10.0.0.1", "wrong token")
        log.refused("10.0.0.2", "wrong token")
    assert [r.getMessage() for r in caplog.records] == [
        "refused 10.0.0.1: wrong token",
        "refused 10.0.0.1: wrong token (59 more refused from there in the last 60 s)",
        "refused 10.0.0.1: wrong token (59 more refused from there in the last 60 s)",
        "refused 10.0.0.2: wrong token",
    ]
