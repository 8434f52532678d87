"""The aiohttp application: health, metrics, the preview page, the ``/ws`` relay and the WHEP front."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from signaling.auth import RefusalLog, RoomAuthenticator, request_token
from signaling.messages import (
    ROOM_PATTERN,
    Bye,
    ErrorCode,
    ErrorReply,
    MessageError,
    PeerJoined,
    PeerLeft,
    Ping,
    Pong,
    RelayedMessage,
    Role,
    Welcome,
    dump,
    parse_client_message,
)
from signaling.metrics import SignalingMetrics
from signaling.rooms import Peer, RoomRegistry, TokenBucket
from signaling.settings import SignalingSettings
from signaling.tokens import TokenError
from signaling.turn import advertised_ice_servers
from signaling.whep import WhepEndpoints

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
CLOSE_ROLE_TAKEN = 4409
CLOSE_ROOM_FULL = 4429
SEND_TIMEOUT_S = 5.0


def package_version() -> str:
    try:
        return version("avatar")
    except PackageNotFoundError:
        return "0+unknown"


class SignalingServer:
    """State of one running signaling server: rooms, auth, counters."""

    def __init__(self, settings: SignalingSettings, token: str) -> None:
        self.settings = settings
        self.auth = RoomAuthenticator(token, settings.shared_token_accepted, settings.token_leeway_s)
        self.registry = RoomRegistry(settings.max_viewers_per_room)
        self.metrics = SignalingMetrics()
        self.refusal_log = RefusalLog(logger)
        self.started = time.monotonic()
        self.version = package_version()
        self._per_address: Counter[str] = Counter()
        self._sockets: set[web.WebSocketResponse] = set()
        self._shutting_down = False
        self.membership_changed = asyncio.Event()
        self.whep = WhepEndpoints(self)
        # the GPU box reports its sidecars here: name -> {"state": "running" | "starting" | ..., ...}
        self.components: Callable[[], dict[str, dict[str, Any]]] | None = None

    # -- HTTP -------------------------------------------------------------------------------------------

    def health_status(self, components: dict[str, dict[str, Any]]) -> str:
        """ok | starting (a component is loading) | degraded (one crashed or restarts) | shutting-down."""
        if self._shutting_down:
            return "shutting-down"
        states = {component.get("state") for component in components.values()}
        if states <= {"running"}:
            return "ok"
        if states <= {"running", "starting", "stopped"}:
            return "starting"
        return "degraded"

    async def healthz(self, request: web.Request) -> web.Response:
        components = self.components() if self.components else {}
        status = self.health_status(components)
        body: dict[str, Any] = {
            "status": status,
            "version": self.version,
            "uptime_s": round(time.monotonic() - self.started, 3),
            "rooms": len(self.registry.rooms),
            "peers": self.registry.peer_count,
        }
        if self.components:
            body["components"] = components
        return web.json_response(body, status=200 if status == "ok" else 503)

    async def metrics_text(self, request: web.Request) -> web.Response:
        body = self.metrics.render(
            active_connections=len(self._sockets),
            rooms=len(self.registry.rooms),
            uptime_s=time.monotonic() - self.started,
        )
        return web.Response(text=body, content_type="text/plain", charset="utf-8", headers={"X-Version": "0.0.4"})

    async def index(self, request: web.Request) -> web.StreamResponse:
        static = self.settings.static_dir or STATIC_DIR
        return web.FileResponse(static / "index.html", headers={"Cache-Control": "no-cache"})

    # -- connections ------------------------------------------------------------------------------------

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def address_full(self, address: str) -> bool:
        """Whether ``address`` holds its maximum of connections (WebSockets and WHEP sessions together)."""
        return self._per_address[address] >= self.settings.max_connections_per_address

    def hold_address(self, address: str) -> None:
        self._per_address[address] += 1

    def release_address(self, address: str) -> None:
        self._per_address[address] -= 1
        if self._per_address[address] <= 0:
            del self._per_address[address]

    # -- WebSocket --------------------------------------------------------------------------------------

    def _refuse_auth(self, address: str, reason: str) -> web.Response:
        self.metrics.auth_failures_total += 1
        self.refusal_log.refused(address, reason)
        return web.json_response({"error": reason}, status=401)

    def _refuse(self, status: int, message: str) -> web.Response:
        self.metrics.connections_refused_total += 1
        return web.json_response({"error": message}, status=status)

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        address = request.remote or "unknown"
        # the token first: without a genuine one every request gets the same 401, whatever else it says
        try:
            claims = self.auth.authenticate(request_token(request))
        except TokenError as exc:
            return self._refuse_auth(address, str(exc))
        if self._shutting_down:
            return self._refuse(503, "server is shutting down")
        room_name = request.query.get("room", "")
        if not ROOM_PATTERN.match(room_name):
            return self._refuse(400, "room must be 1-64 characters of letters, digits, '_', '.', '-'")
        try:
            role = Role(request.query.get("role", ""))
        except ValueError:
            return self._refuse(400, "role must be one of: remote, local, viewer")
        refusal = self.auth.scope_refusal(claims, room_name, role.value)
        if refusal is not None:
            return self._refuse_auth(address, refusal)
        if self.address_full(address):
            return self._refuse(429, f"too many connections from {address}")
        if request.headers.get("Upgrade", "").lower() != "websocket":
            # token and room are fine; browsers check this with a plain GET (they cannot read a failed upgrade)
            return web.json_response({"error": "upgrade to a WebSocket to join", "room": room_name}, status=426)

        socket = web.WebSocketResponse(
            heartbeat=self.settings.heartbeat_s,
            max_msg_size=self.settings.max_frame_bytes,
        )
        await socket.prepare(request)
        self.hold_address(address)
        self._sockets.add(socket)
        self.metrics.connections_total += 1
        try:
            await self._serve_socket(socket, room_name, role, address)
        finally:
            self._sockets.discard(socket)
            self.release_address(address)
        return socket

    async def _serve_socket(self, socket: web.WebSocketResponse, room_name: str, role: Role, address: str) -> None:
        try:
            peer = self.registry.join(
                room_name,
                role,
                address,
                functools.partial(self._send, socket),
                TokenBucket(self.settings.messages_per_second, self.settings.message_burst),
            )
        except MessageError as exc:
            self.metrics.connections_refused_total += 1
            await self._send(socket, ErrorReply(code=exc.code, message=str(exc)))
            close_code = CLOSE_ROLE_TAKEN if exc.code is ErrorCode.ROLE_TAKEN else CLOSE_ROOM_FULL
            await socket.close(code=close_code, message=exc.code.value.encode())
            return
        self.membership_changed.set()
        log = logging.LoggerAdapter(logger, {"peer": peer.peer_id})
        log.info("peer %s joined room %s as %s from %s", peer.peer_id, room_name, role.value, address)
        room = self.registry.room(room_name)
        assert room is not None
        await self._send(
            socket,
            Welcome(
                peer_id=peer.peer_id,
                room=room_name,
                role=role,
                peers=[p.info for p in room.others(peer)],
                ice_servers=advertised_ice_servers(
                    self.settings.ice_servers,
                    self.settings.turn_secret.get_secret_value() if self.settings.turn_secret else None,
                    peer.peer_id,
                    self.settings.turn_ttl_s,
                ),
            ),
        )
        await self.announce(peer, PeerJoined(peer_id=peer.peer_id, role=role))
        try:
            async for frame in socket:
                if frame.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    await self._handle_frame(peer, frame.data)
                elif frame.type is WSMsgType.ERROR:
                    log.info("peer %s socket error: %s", peer.peer_id, socket.exception())
            if socket.close_code == WSCloseCode.MESSAGE_TOO_BIG:
                self.metrics.messages_rejected[ErrorCode.TOO_LARGE.value] += 1
        finally:
            self.registry.leave(peer)
            self.membership_changed.set()
            log.info("peer %s left room %s (close code %s)", peer.peer_id, room_name, socket.close_code)
            await self.announce(peer, PeerLeft(peer_id=peer.peer_id, role=role))

    async def _handle_frame(self, peer: Peer, data: str | bytes) -> None:
        try:
            if not peer.bucket.take():
                raise MessageError(ErrorCode.RATE_LIMITED, "too many messages; slow down")
            message = parse_client_message(data, self.settings.max_message_bytes)
            if isinstance(message, Ping):
                await peer.send(Pong(id=message.id))
                return
            await self.relay(peer, message)
        except MessageError as exc:
            self.metrics.messages_rejected[exc.code.value] += 1
            await peer.send(ErrorReply(code=exc.code, message=str(exc)))

    async def relay(self, sender: Peer, message: RelayedMessage) -> None:
        """Deliver ``message`` from ``sender`` to its addressee in the same room (one side must be the remote)."""
        room = self.registry.room(sender.room)
        target = room.peers.get(message.to) if room else None
        if target is None or target is sender:
            raise MessageError(ErrorCode.NO_SUCH_PEER, f"no peer {message.to!r} in room {sender.room!r}")
        if Role.REMOTE not in (sender.role, target.role):
            raise MessageError(ErrorCode.NOT_ALLOWED, "sessions are only between the remote peer and a subscriber")
        await target.send(message.model_copy(update={"from_": sender.peer_id}))
        self.metrics.messages_relayed_total += 1

    async def announce(self, sender: Peer, message: PeerJoined | PeerLeft) -> None:
        """Tell everyone else in ``sender``'s room that it joined or left."""
        room = self.registry.room(sender.room)
        if room is None:
            return
        await asyncio.gather(*(p.send(message) for p in room.others(sender)))

    async def _send(self, socket: web.WebSocketResponse, message: object) -> None:
        if socket.closed:
            return
        try:
            async with asyncio.timeout(SEND_TIMEOUT_S):
                await socket.send_str(dump(message))  # type: ignore[arg-type]
        except (ConnectionError, TimeoutError, RuntimeError) as exc:
            logger.debug("send failed: %s", exc)

    async def wait_for_peer(self, role: Role, room: str | None = None) -> None:
        """Return once a peer of ``role`` (in ``room`` if given) is present; callers bound the wait."""
        while not any(p.role is role and room in (None, p.room) for p in self.registry.all_peers()):
            self.membership_changed.clear()
            await self.membership_changed.wait()

    # -- shutdown ---------------------------------------------------------------------------------------

    async def shutdown(self, app: web.Application | None = None) -> None:
        """Say ``bye`` to every peer and close every socket (1001 going away)."""
        self._shutting_down = True
        peers = self.registry.all_peers()
        logger.info("shutting down: saying bye to %d peers", len(peers))
        for peer in peers:
            await peer.send(Bye(to=peer.peer_id, reason="server-shutdown"))
        await self.whep.close()
        await asyncio.gather(
            *(s.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown") for s in list(self._sockets)),
            return_exceptions=True,
        )


async def no_content(request: web.Request) -> web.Response:
    return web.Response(status=204)


SERVER_KEY: web.AppKey[SignalingServer] = web.AppKey("server", SignalingServer)


def create_app(settings: SignalingSettings, token: str) -> web.Application:
    """Build the signaling application around one :class:`SignalingServer`."""
    server = SignalingServer(settings, token)
    app = web.Application(client_max_size=settings.max_frame_bytes)
    app[SERVER_KEY] = server
    app.router.add_get("/healthz", server.healthz)
    app.router.add_get("/metrics", server.metrics_text)
    app.router.add_get("/ws", server.websocket)
    server.whep.add_routes(app)
    app.router.add_get("/", server.index)
    app.router.add_get("/favicon.ico", no_content)
    app.router.add_static("/static/", settings.static_dir or STATIC_DIR, show_index=False)
    app.on_shutdown.append(server.shutdown)
    return app
