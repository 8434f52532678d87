"""The local peer: joins as ``local``, offers to the avatar, keeps the connection up by itself."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Sequence
from typing import Any

from media.datachannel import DataChannelEndpoint
from media.events import Event
from media.protocol import DataMessage
from media.rtc import patches
from media.rtc.ice import pin_host_addresses
from media.rtc.rendezvous import join_room
from peer_local.session import RemoteSession
from peer_local.settings import LocalSettings
from peer_local.sinks.base import MediaSink
from signaling.client import SignalingClient, SignalingError
from signaling.messages import Answer, Bye, Offer, PeerJoined, PeerLeft, Role

logger = logging.getLogger(__name__)


class LocalPeer:
    """Receives the avatar into ``sinks``; reconnects after remote restarts, failures and signaling loss.

    ``message_received`` carries every data-channel message of whichever session is current; ``channel_opened``
    fires when a session's data channel opens (a (re)connected avatar: time to send what it should know)."""

    def __init__(self, settings: LocalSettings, sinks: Sequence[MediaSink], role: Role = Role.LOCAL) -> None:
        self.settings = settings
        self.role = role
        self.sinks = list(sinks)
        self.message_received: Event[[DataMessage]] = Event("message_received")
        self.channel_opened: Event[[]] = Event("channel_opened")
        self.session: RemoteSession | None = None
        self.sessions_started = 0
        self.session_changed = asyncio.Event()
        self._remote_id: str | None = None
        self._retry_at = 0.0
        self._backoff = settings.reconnect_min_s
        self._answer_watch: asyncio.Task[None] | None = None
        self._ice_servers: list[dict[str, Any]] = []
        if settings.ice_host_addresses:
            pin_host_addresses(settings.ice_host_addresses)
        patches.install()

    async def wait_session(self) -> RemoteSession:
        """The current session, waiting for one to start (callers bound the wait)."""
        while self.session is None:
            self.session_changed.clear()
            await self.session_changed.wait()
        return self.session

    @property
    def endpoint(self) -> DataChannelEndpoint | None:
        return self.session.endpoint if self.session else None

    def send(self, message: DataMessage) -> bool:
        endpoint = self.endpoint
        return endpoint.send(message) if endpoint else False

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``: stay joined to signaling and connected to the remote whenever it is there."""
        try:
            while (client := await join_room(self.settings, self.role, stop)) is not None:
                welcome = client.welcome
                assert welcome is not None
                self._ice_servers = welcome.ice_servers
                remote = next((p for p in welcome.peers if p.role is Role.REMOTE), None)
                self._remote_id = remote.peer_id if remote else None
                if self.session is not None and self.session.remote_id != self._remote_id:
                    await self._keep_or_drop_session("signaling is back")
                logger.info(
                    "joined room %s as %s; remote %s",
                    self.settings.room,
                    self.role.value,
                    self._remote_id or "not here yet",
                )
                try:
                    await self._serve(client, stop)
                finally:
                    await client.close()
        finally:
            await self._drop_session("shutting down")

    async def _serve(self, client: SignalingClient, stop: asyncio.Event) -> None:
        messages = client.messages().__aiter__()
        reader: asyncio.Future[object] = asyncio.ensure_future(messages.__anext__())
        stop_wait = asyncio.ensure_future(stop.wait())
        try:
            while True:
                if self._remote_id and self.session is None and time.monotonic() >= self._retry_at:
                    await self._start_session(client, self._remote_id)
                waits: set[asyncio.Future[Any]] = {reader, stop_wait}
                ended_wait = asyncio.ensure_future(self.session.ended.wait()) if self.session else None
                if ended_wait is not None:
                    waits.add(ended_wait)
                timeout = None
                if self._remote_id and self.session is None:
                    timeout = max(0.0, self._retry_at - time.monotonic())
                done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if ended_wait is not None and not ended_wait.done():
                    ended_wait.cancel()
                if stop_wait in done:
                    return
                if ended_wait is not None and ended_wait in done and self.session is not None:
                    await self._drop_session(self.session.end_reason, retry=True)
                if reader in done:
                    try:
                        message = reader.result()
                    except StopAsyncIteration:
                        logger.warning("signaling connection lost; media continues while reconnecting")
                        return
                    await self._handle_signal(message)
                    reader = asyncio.ensure_future(messages.__anext__())
        finally:
            reader.cancel()
            stop_wait.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, Exception):
                await reader

    async def _handle_signal(self, message: object) -> None:
        if isinstance(message, PeerJoined) and message.role is Role.REMOTE:
            logger.info("remote peer %s joined", message.peer_id)
            self._remote_id = message.peer_id
            if self.session is not None:
                await self._keep_or_drop_session("a remote peer joined")
            self._retry_at = 0.0
            self._backoff = self.settings.reconnect_min_s
        elif isinstance(message, PeerLeft) and message.peer_id == self._remote_id:
            self._remote_id = None
            await self._drop_session("the remote peer left")
        elif isinstance(message, Answer) and self.session and message.from_ == self.session.remote_id:
            try:
                await self.session.accept_answer(message.sdp)
            except ValueError as exc:
                await self._drop_session(f"bad answer from the remote peer: {exc}", retry=True)
        elif isinstance(message, Bye) and message.from_ is None and message.reason == "server-shutdown":
            logger.info("signaling server is shutting down; media continues while reconnecting")
        elif isinstance(message, Bye) and self.session and message.from_ in (self.session.remote_id, None):
            await self._drop_session(f"remote said bye ({message.reason or 'no reason'})", retry=True)

    async def _start_session(self, client: SignalingClient, remote_id: str) -> None:
        session = RemoteSession(remote_id, self.settings, self.sinks, self._ice_servers)
        session.endpoint.message_received.connect(self.message_received.emit)
        session.channel_opened.connect(self.channel_opened.emit)
        self.session = session
        self.sessions_started += 1
        self.session_changed.set()
        try:
            sdp = await session.create_offer()
            await client.send(Offer(to=remote_id, sdp=sdp))
        except (SignalingError, ConnectionError) as exc:
            await self._drop_session(f"could not send the offer: {exc}", retry=True)
            return
        self._answer_watch = asyncio.create_task(self._watch_answer(session), name="answer-watch")

    async def _watch_answer(self, session: RemoteSession) -> None:
        if not await session.wait_answered():
            session.end(f"no answer within {self.settings.answer_timeout_s:.0f} s")

    async def _keep_or_drop_session(self, why: str) -> None:
        """The avatar has a new signaling identity (signaling restarted, or the avatar did).

        A call whose media still flows is the same avatar reached before: it continues untouched (peer-to-peer
        media never needed signaling). Otherwise the old session is dropped and a new offer goes out.
        """
        assert self.session is not None
        if self.session.media_flowing():
            logger.info(
                "%s; the call continues (the avatar is %s in signaling)", why, self._remote_id or "not back yet"
            )
            return
        await self._drop_session(f"{why}; the old call carries no media")

    async def _drop_session(self, reason: str, retry: bool = False) -> None:
        session = self.session
        if session is None:
            return
        self.session = None
        self.session_changed.set()
        if self._answer_watch is not None:
            self._answer_watch.cancel()
            self._answer_watch = None
        logger.warning(
            "connection to the avatar ended: %s%s", reason, "; reconnecting" if retry and self._remote_id else ""
        )
        await session.close()
        self.message_received.cancel_pending()  # listeners still busy with the ended session's messages
        if retry:
            lived = time.monotonic() - session.started_at
            self._backoff = (
                self.settings.reconnect_min_s if lived > 10 else min(self._backoff * 2, self.settings.reconnect_max_s)
            )
            self._retry_at = time.monotonic() + self._backoff * random.uniform(0.8, 1.2)
