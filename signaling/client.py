"""A signaling client for the peers: join a room, receive server messages, send relayed ones."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from types import TracebackType
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
from pydantic import BaseModel

from signaling.messages import ErrorReply, MessageError, Role, Welcome, dump, parse_server_message
from signaling.tokens import issue_token, looks_signed

logger = logging.getLogger(__name__)


class SignalingError(RuntimeError):
    """The signaling server refused us or went away."""


class SignalingAuthError(SignalingError):
    """401: missing or wrong token. Retrying will not help."""


CONNECTION_TOKEN_TTL_S = 600
# minted tokens start this long before our clock says now: a peer whose clock runs ahead of the server's by up to
# this much is still admitted (the server's own leeway is only a few seconds)
CLOCK_AHEAD_S = 60


def connection_token(token: str, room: str, role: Role) -> str:
    """A signed token is presented as is; holding the secret, mint a short-lived one for this room and role."""
    if looks_signed(token):
        return token
    issued = time.time() - CLOCK_AHEAD_S
    return issue_token(token, room, role.value, CONNECTION_TOKEN_TTL_S + CLOCK_AHEAD_S, now=issued)


class SignalingClient:
    """One WebSocket connection to the signaling server (async context manager)."""

    def __init__(self, url: str, room: str, role: Role, token: str, connect_timeout_s: float = 10.0) -> None:
        self.url = url
        self.room = room
        self.role = role
        self._token = token
        self.connect_timeout_s = connect_timeout_s
        self._session: aiohttp.ClientSession | None = None
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self.welcome: Welcome | None = None

    def _ws_url(self) -> str:
        parts = urlsplit(self.url)
        scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
        path = parts.path if parts.path.endswith("/ws") else parts.path.rstrip("/") + "/ws"
        query = dict(parse_qsl(parts.query))
        query.update(room=self.room, role=self.role.value)
        return urlunsplit((scheme, parts.netloc, path, urlencode(query), ""))

    async def connect(self) -> Welcome:
        """Open the socket and wait for ``welcome``; raises :class:`SignalingError` with the reason."""
        self._session = aiohttp.ClientSession()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                self._socket = await self._session.ws_connect(
                    self._ws_url(),
                    headers={"Authorization": f"Bearer {connection_token(self._token, self.room, self.role)}"},
                    heartbeat=10.0,
                )
                message = await self._socket.receive()
        except aiohttp.WSServerHandshakeError as exc:
            await self.close()
            if exc.status == 401:
                raise SignalingAuthError(f"signaling server at {self.url} refused the token (401)") from exc
            raise SignalingError(
                f"signaling server at {self.url} refused the connection ({exc.status} {exc.message})"
            ) from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            await self.close()
            raise SignalingError(f"cannot reach signaling server at {self.url}: {exc or type(exc).__name__}") from exc
        if message.type != aiohttp.WSMsgType.TEXT:
            await self.close()
            raise SignalingError(f"signaling server closed the connection ({self._socket.close_code})")
        try:
            first = parse_server_message(message.data)
        except MessageError as exc:
            await self.close()
            raise SignalingError(f"signaling server sent something else than welcome: {exc}") from exc
        if isinstance(first, ErrorReply):
            await self.close()
            raise SignalingError(f"signaling server refused us: {first.code}: {first.message}")
        if not isinstance(first, Welcome):
            await self.close()
            raise SignalingError(f"expected welcome from signaling, got {first.type}")
        self.welcome = first
        return first

    async def send(self, message: BaseModel) -> None:
        if self._socket is None or self._socket.closed:
            raise SignalingError("signaling connection is closed")
        await self._socket.send_str(dump(message))

    async def messages(self) -> AsyncIterator[BaseModel]:
        """Server messages until the socket closes; malformed ones are logged and skipped."""
        assert self._socket is not None
        async for frame in self._socket:
            if frame.type is not aiohttp.WSMsgType.TEXT:
                continue
            try:
                yield parse_server_message(frame.data)
            except MessageError as exc:
                logger.warning("ignoring malformed signaling message: %s", exc)

    @property
    def closed(self) -> bool:
        return self._socket is None or self._socket.closed

    async def close(self) -> None:
        if self._socket is not None:
            await self._socket.close()
        if self._session is not None:
            await self._session.close()
        self._socket = None
        self._session = None

    async def __aenter__(self) -> SignalingClient:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
