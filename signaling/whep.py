"""WHEP (WebRTC-HTTP Egress Protocol): any standard player watches the avatar with one HTTP request.

A WHEP viewer becomes a viewer of the room without a socket: its offer is relayed to the room's avatar exactly as
a browser viewer's would be (``peer-joined``, then ``offer``), and the avatar's ``answer`` is the HTTP answer.
``DELETE`` on the session's location leaves the room (``peer-left``), which ends the session at the avatar.
The avatar gathers all its candidates before answering, so trickle (``PATCH``) is not offered (405).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web
from pydantic import BaseModel

from signaling.messages import (
    MAX_SDP_CHARS,
    ROOM_PATTERN,
    Answer,
    Bye,
    MessageError,
    Offer,
    PeerJoined,
    PeerLeft,
    Role,
)
from signaling.rooms import Peer, TokenBucket
from signaling.tokens import RoomClaims, TokenError
from signaling.turn import advertised_ice_servers

if TYPE_CHECKING:
    from signaling.app import SignalingServer

logger = logging.getLogger(__name__)

ANSWER_TIMEOUT_S = 15.0
SDP_TYPE = "application/sdp"
# every response may be read by a player on another origin; the preflight allows what WHEP clients send
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Location, ETag, Link, Accept-Post, WWW-Authenticate",
}
PREFLIGHT_HEADERS = {
    **CORS_HEADERS,
    "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
    "Access-Control-Max-Age": "600",
}


class OfferRefusedError(Exception):
    """The avatar said ``bye`` instead of answering; ``status`` is the HTTP status to give the player."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(eq=False)
class WhepSession:
    """One WHEP viewer: its room membership, its secret id (the resource URL) and the answer it waits for."""

    session_id: str
    room: str
    address: str
    etag: str = field(default_factory=lambda: f'"{secrets.token_hex(8)}"')
    peer: Peer | None = None
    answer: asyncio.Future[str] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    expiry: asyncio.Task[None] | None = None

    @property
    def location(self) -> str:
        return f"/whep/{self.room}/{self.session_id}"

    async def receive(self, message: BaseModel) -> None:
        """What the room sends this viewer: the avatar's answer, or its ``bye`` (anything else is not for us)."""
        if isinstance(message, Answer) and not self.answer.done():
            self.answer.set_result(message.sdp)
        elif isinstance(message, Bye) and not self.answer.done():
            reason = message.reason or "the avatar refused the offer"
            self.answer.set_exception(OfferRefusedError(400 if reason.startswith("bad offer") else 503, reason))
        elif isinstance(message, PeerLeft) and message.role is Role.REMOTE and not self.answer.done():
            self.answer.set_exception(OfferRefusedError(503, "the avatar left before answering"))


def reply(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers={**CORS_HEADERS, **(headers or {})})


class WhepEndpoints:
    """``/whep/{room}`` (POST, OPTIONS) and ``/whep/{room}/{session}`` (DELETE, PATCH, OPTIONS)."""

    def __init__(self, server: SignalingServer, answer_timeout_s: float = ANSWER_TIMEOUT_S) -> None:
        self.server = server
        self.answer_timeout_s = answer_timeout_s
        self.sessions: dict[str, WhepSession] = {}

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("OPTIONS", "/whep/{room}", self.options)
        app.router.add_post("/whep/{room}", self.post)
        app.router.add_route("OPTIONS", "/whep/{room}/{session}", self.options)
        app.router.add_delete("/whep/{room}/{session}", self.delete)
        app.router.add_patch("/whep/{room}/{session}", self.patch)

    # -- auth -------------------------------------------------------------------------------------------

    def _authorize(self, request: web.Request) -> tuple[web.Response | None, RoomClaims | None]:
        """``(None, claims)`` if the bearer token admits a viewer into the path's room (claims None: the shared
        secret); else ``(the 401/403 to send, None)``."""
        address = request.remote or "unknown"
        header = request.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        try:
            # the header only: a token in a URL ends up in logs and in the players' history
            claims: RoomClaims | None = self.server.auth.authenticate(
                presented.strip() if scheme.lower() == "bearer" else None
            )
        except TokenError as exc:
            return self._refuse_auth(address, str(exc), 401, "invalid_token"), None
        scope = self.server.auth.scope_refusal(claims, request.match_info["room"], Role.VIEWER.value)
        if scope is not None:
            # a genuine token for another room or role (the avatar's, the laptop's) does not make a viewer
            return self._refuse_auth(address, scope, 403, "insufficient_scope"), None
        return None, claims

    def _refuse_auth(self, address: str, reason: str, status: int, error: str) -> web.Response:
        self.server.metrics.auth_failures_total += 1
        self.server.refusal_log.refused(address, f"WHEP: {reason}")
        challenge = f'Bearer realm="avatar", error="{error}"'
        return reply(status, reason, {"WWW-Authenticate": challenge})

    # -- endpoints --------------------------------------------------------------------------------------

    async def options(self, request: web.Request) -> web.Response:
        """CORS preflight (browsers send it without credentials, so it tells nothing about rooms)."""
        if "session" in request.match_info:
            return web.Response(status=204, headers={**PREFLIGHT_HEADERS, "Access-Control-Allow-Methods": "DELETE"})
        headers = {**PREFLIGHT_HEADERS, "Access-Control-Allow-Methods": "POST", "Accept-Post": SDP_TYPE}
        return web.Response(status=204, headers=headers)

    async def post(self, request: web.Request) -> web.Response:
        """An SDP offer in, the avatar's SDP answer out (201, with the session's location)."""
        refusal, claims = self._authorize(request)
        if refusal is not None:
            return refusal
        if self.server.shutting_down:
            return reply(503, "server is shutting down")
        room_name = request.match_info["room"]
        if not ROOM_PATTERN.match(room_name):
            return reply(404, "room must be 1-64 characters of letters, digits, '_', '.', '-'")
        if request.content_type != SDP_TYPE:
            return reply(415, f"the offer must be sent as {SDP_TYPE}", {"Accept-Post": SDP_TYPE})
        if request.content_length is not None and request.content_length > MAX_SDP_CHARS:
            return reply(413, f"an offer is at most {MAX_SDP_CHARS} bytes")
        offer = await self._read_offer(request)
        if isinstance(offer, web.Response):
            return offer
        room = self.server.registry.room(room_name)
        remote = room.remote if room else None
        if remote is None:
            return reply(503, f"no avatar in room {room_name!r} now; try again when it is running")
        address = request.remote or "unknown"
        if self.server.address_full(address):
            return reply(429, f"too many connections from {address}")
        session = WhepSession(secrets.token_urlsafe(24), room_name, address)
        try:
            session.peer = self.server.registry.join(
                room_name, Role.VIEWER, address, session.receive, TokenBucket(1.0, 1)
            )
        except MessageError as exc:  # the room has its maximum of viewers
            return reply(503, str(exc))
        self.server.hold_address(address)
        self.server.membership_changed.set()
        self.sessions[session.session_id] = session
        try:
            answer = await self._ask_avatar(session, remote, offer)
        except OfferRefusedError as exc:
            await self._end(session, f"refused: {exc}")
            return reply(exc.status, str(exc))
        except TimeoutError:
            await self._end(session, "the avatar did not answer")
            return reply(504, f"the avatar did not answer within {self.answer_timeout_s:g} s")
        except BaseException:
            await self._end(session, "the request was abandoned")
            raise
        if claims is not None:  # a session nobody deletes ends with its token (the shared secret does not expire)
            lifetime_s = claims.expires_at + self.server.auth.leeway_s - time.time()
            session.expiry = asyncio.create_task(self._expire(session, lifetime_s))
        logger.info("WHEP viewer %s joined room %s from %s", session.peer.peer_id, room_name, address)
        headers = {**CORS_HEADERS, "Location": session.location, "ETag": session.etag}
        links = self._ice_server_links(session.peer.peer_id)
        if links:
            headers["Link"] = links
        return web.Response(status=201, text=answer, content_type=SDP_TYPE, headers=headers)

    async def delete(self, request: web.Request) -> web.Response:
        """End the session: the viewer leaves the room, and the avatar closes its connection."""
        refusal, _ = self._authorize(request)
        if refusal is not None:
            return refusal
        session = self.sessions.get(request.match_info["session"])
        if session is None or session.room != request.match_info["room"]:
            return reply(404, "no such WHEP session (it ended, or it never was)")
        await self._end(session, "deleted by the player")
        return web.Response(status=200, headers=CORS_HEADERS)

    async def patch(self, request: web.Request) -> web.Response:
        """No trickle and no ICE restart: the answer holds all of the avatar's candidates."""
        refusal, _ = self._authorize(request)
        if refusal is not None:
            return refusal
        return reply(405, "trickle ICE is not supported: put the candidates in the offer", {"Allow": "DELETE"})

    def _ice_server_links(self, peer_id: str) -> str:
        """The ICE servers a browser viewer gets in ``welcome`` (TURN with fresh credentials), as WHEP's
        ``Link: <url>; rel="ice-server"`` (RFC 8288 links, comma-separated)."""
        settings = self.server.settings
        secret = settings.turn_secret.get_secret_value() if settings.turn_secret else None
        links = []
        for server in advertised_ice_servers(settings.ice_servers, secret, peer_id, settings.turn_ttl_s):
            link = f'<{server["urls"]}>; rel="ice-server"'
            if "username" in server:
                link += f'; username="{server["username"]}"; credential="{server["credential"]}"'
                link += '; credential-type="password"'
            links.append(link)
        return ", ".join(links)

    # -- the session with the avatar ---------------------------------------------------------------------

    async def _read_offer(self, request: web.Request) -> str | web.Response:
        body = await request.read()
        if len(body) > MAX_SDP_CHARS:
            return reply(413, f"an offer is at most {MAX_SDP_CHARS} bytes")
        try:
            sdp = body.decode("utf-8")
        except UnicodeDecodeError:
            return reply(400, "the offer is not UTF-8 text")
        sdp = sdp.replace("\r\n", "\n").replace("\n", "\r\n")
        if not sdp.startswith("v=0\r\n") or "\r\nm=" not in sdp:
            return reply(400, "the offer is not an SDP session description with media (v=0 ... m=...)")
        return sdp

    async def _ask_avatar(self, session: WhepSession, remote: Peer, sdp: str) -> str:
        """Relay the offer as a browser viewer's would be, and wait (bounded) for the avatar's answer."""
        assert session.peer is not None
        await self.server.announce(session.peer, PeerJoined(peer_id=session.peer.peer_id, role=Role.VIEWER))
        try:
            await self.server.relay(session.peer, Offer(to=remote.peer_id, sdp=sdp))
        except MessageError as exc:  # the avatar left in between
            raise OfferRefusedError(503, str(exc)) from exc
        async with asyncio.timeout(self.answer_timeout_s):
            return await session.answer

    async def _expire(self, session: WhepSession, after_s: float) -> None:
        await asyncio.sleep(max(0.0, after_s))  # a timer, not a synchronisation: the token's end is a wall-clock time
        await self._end(session, "the viewer token expired")

    async def _end(self, session: WhepSession, why: str) -> None:
        if self.sessions.pop(session.session_id, None) is None:
            return
        if session.expiry is not None and session.expiry is not asyncio.current_task():
            session.expiry.cancel()
        self.server.release_address(session.address)
        peer = session.peer
        if peer is None:
            return
        self.server.registry.leave(peer)
        self.server.membership_changed.set()
        logger.info("WHEP viewer %s left room %s: %s", peer.peer_id, session.room, why)
        await self.server.announce(peer, PeerLeft(peer_id=peer.peer_id, role=Role.VIEWER))

    async def close(self) -> None:
        """End every session (server shutdown)."""
        for session in list(self.sessions.values()):
            await self._end(session, "server shutdown")
