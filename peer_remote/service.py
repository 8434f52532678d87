"""The remote peer: joins signaling as ``remote`` and answers every subscriber from one shared stream."""

from __future__ import annotations

import asyncio
import logging

from aiortc.exceptions import InternalError, InvalidAccessError, InvalidStateError, OperationError

from media.clock import MediaClock
from media.producer import AVProducer
from media.protocol import (
    AnswerNow,
    Control,
    DataMessage,
    EarlyTranscript,
    Error,
    Interrupt,
    ProfileChunk,
    ProfileOffer,
    Retract,
    Speech,
)
from media.rtc import patches
from media.rtc.codecs import set_x264_preset
from media.rtc.ice import pin_host_addresses
from media.rtc.rendezvous import join_room
from peer_remote.avatar import Avatar, CloneBackends, ProducerWrapper
from peer_remote.settings import RemoteSettings
from peer_remote.subscriber import SubscriberSession
from peer_remote.whip_publisher import WhipPublisher, WhipTarget
from signaling.client import SignalingClient
from signaling.messages import Answer, Bye, Candidate, Offer, PeerJoined, PeerLeft, Role

logger = logging.getLogger(__name__)
# what only the person's own laptop may send; viewers (the preview page) may type transcripts, nothing more
# (a viewer's `speech start` would hold the clone's floor, its `answer-now` make it answer)
LOCAL_ONLY = (EarlyTranscript, Retract, Interrupt, Speech, AnswerNow, Control, ProfileOffer, ProfileChunk)


class RemotePeer:
    """Joins one room as ``remote`` and serves its clone's stream to every subscriber until stopped."""

    def __init__(
        self,
        settings: RemoteSettings,
        backends: CloneBackends | None = None,
        producer: AVProducer | None = None,
        wrap_producer: ProducerWrapper | None = None,
    ) -> None:
        """``backends``: models shared with the other rooms' clones on this box (default: this room's own);
        ``producer``/``wrap_producer``: see :class:`~peer_remote.avatar.Avatar`."""
        self.settings = settings
        self.clock = MediaClock()
        self.avatar = Avatar(settings, self.clock, backends, producer, wrap_producer)
        self.avatar.said.connect(self.broadcast)
        self.stream = self.avatar.stream
        self.sessions: dict[str, SubscriberSession] = {}
        self.sessions_changed = asyncio.Event()  # set whenever a subscriber session is added or removed
        self.connected = asyncio.Event()
        self._roles: dict[str, Role] = {}
        self.publisher: WhipPublisher | None = None
        if settings.publish_whip:
            token = settings.publish_token.get_secret_value() if settings.publish_token else None
            target = WhipTarget(settings.publish_whip, token, settings.codec)
            self.publisher = WhipPublisher(target, self.stream, settings.rtc_ice_servers())
        patches.install()
        if settings.ice_host_addresses:
            pin_host_addresses(settings.ice_host_addresses)
        set_x264_preset(settings.x264_preset)

    def broadcast(self, message: DataMessage) -> None:
        """Send to every subscriber of the room."""
        for session in list(self.sessions.values()):
            session.send(message)

    async def run(self, stop: asyncio.Event) -> None:
        """Stay joined (reconnecting to signaling with backoff) until ``stop`` is set."""
        await self.avatar.prepare()
        self.stream.start()
        # an SFU behind a WHIP endpoint: one more peer connection, alongside the subscribers, until we stop
        stop_publishing = asyncio.Event()
        publishing = asyncio.create_task(self.publisher.run(stop_publishing)) if self.publisher else None
        try:
            while (client := await join_room(self.settings, Role.REMOTE, stop)) is not None:
                logger.info(
                    "joined room %s as remote (%s)",
                    self.settings.room,
                    client.welcome.peer_id if client.welcome else "?",
                )
                if client.welcome:
                    self._roles = {p.peer_id: p.role for p in client.welcome.peers}
                self.connected.set()
                try:
                    await self._serve(client, stop)
                finally:
                    self.connected.clear()
                    await client.close()
        finally:
            # subscribers keep their media through a signaling outage; they end only with us
            if publishing is not None:
                stop_publishing.set()
                await _stopped(publishing)
            await self.avatar.close()
            await self._close_sessions()
            await self.stream.stop()

    async def _serve(self, client: SignalingClient, stop: asyncio.Event) -> None:
        stop_wait = asyncio.ensure_future(stop.wait())
        messages = client.messages().__aiter__()
        try:
            while True:
                next_message = asyncio.ensure_future(messages.__anext__())
                done, _ = await asyncio.wait({next_message, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                if stop_wait in done:
                    next_message.cancel()
                    return
                try:
                    message = next_message.result()
                except StopAsyncIteration:
                    logger.warning("signaling connection lost; reconnecting")
                    return
                await self._handle_signal(client, message)
        finally:
            stop_wait.cancel()

    async def _handle_signal(self, client: SignalingClient, message: object) -> None:
        if isinstance(message, PeerJoined):
            self._roles[message.peer_id] = message.role
        elif isinstance(message, Offer) and message.from_:
            await self._answer(client, message)
        elif isinstance(message, Candidate) and message.from_ in self.sessions:
            try:
                await self.sessions[message.from_].add_candidate(message)
            except ValueError as exc:
                logger.info("ignoring candidate from %s: %s", message.from_, exc)
        elif isinstance(message, Bye) and message.from_ in self.sessions:
            await self.sessions[message.from_].close()
        elif isinstance(message, PeerLeft):
            self._roles.pop(message.peer_id, None)
            if message.peer_id in self.sessions:
                await self.sessions[message.peer_id].close()

    async def _answer(self, client: SignalingClient, offer: Offer) -> None:
        peer_id = offer.from_
        assert peer_id is not None
        if peer_id in self.sessions:
            await self.sessions.pop(peer_id).close()
        if len(self.sessions) >= self.settings.max_subscribers:
            await client.send(Bye(to=peer_id, reason="too many subscribers"))
            return
        role = self._roles.get(peer_id, Role.VIEWER)
        advertised = client.welcome.ice_servers if client.welcome else []
        session = SubscriberSession(
            peer_id,
            role,
            self.settings,
            self.stream,
            self._on_message,
            self._session_closed,
            advertised,
            on_channel_open=self._greet,
        )
        self.sessions[peer_id] = session
        self.sessions_changed.set()
        try:
            sdp = await session.answer(offer.sdp)
        except (
            ValueError,
            AssertionError,
            RuntimeError,
            InternalError,
            InvalidAccessError,
            InvalidStateError,
            OperationError,
        ) as exc:
            logger.warning("cannot answer %s: %s", peer_id, exc)
            await session.close()
            await client.send(Bye(to=peer_id, reason=f"bad offer: {exc}"[:200]))
            return
        await client.send(Answer(to=peer_id, sdp=sdp))
        logger.info("answered %s; %d subscriber(s)", peer_id, len(self.sessions))

    def _session_closed(self, session: SubscriberSession) -> None:
        self.avatar.subscriber_left()
        if self.sessions.get(session.peer_id) is session:
            del self.sessions[session.peer_id]
            self.sessions_changed.set()
            logger.info("subscriber %s gone; %d left", session.peer_id, len(self.sessions))

    async def _on_message(self, session: SubscriberSession, message: DataMessage) -> None:
        if isinstance(message, LOCAL_ONLY) and session.role is not Role.LOCAL:
            # a viewer token (a browser preview) must not steer the clone: take over, mute, skip, replace its face
            logger.warning("refused %s from %s (%s)", message.type, session.peer_id, session.role.value)
            session.send(Error(code="not-allowed", message=f"only the local peer may send {message.type} messages"))
            return
        if isinstance(message, Error):
            return
        typed = session.role == Role.VIEWER
        if not await self.avatar.on_message(message, session.send, typed):
            session.send(Error(code="unexpected", message=f"the remote peer does not accept {message.type} messages"))

    def _greet(self, session: SubscriberSession) -> None:
        for message in self.avatar.greeting():
            session.send(message)

    async def _close_sessions(self) -> None:
        for session in list(self.sessions.values()):
            await session.close()


async def _stopped(task: asyncio.Task[None], timeout_s: float = 10.0) -> None:
    """Wait for a task told to stop; cancel it past ``timeout_s``."""
    try:
        async with asyncio.timeout(timeout_s):
            await task
    except TimeoutError:
        logger.warning("%s did not stop within %.0f s; cancelled", task.get_name(), timeout_s)
