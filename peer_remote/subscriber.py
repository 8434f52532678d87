"""One subscriber (the local peer or a browser viewer) of the avatar: its own RTCPeerConnection."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription

from media.datachannel import DataChannelEndpoint
from media.protocol import DataMessage
from media.rtc.codecs import prefer_video_codec
from media.rtc.ice import rtc_configuration
from media.rtc.peer_connection import add_remote_candidate, close_peer_connection
from media.rtc.sdp_policy import check_sdp
from media.stream import AVStream
from peer_remote.settings import RemoteSettings
from signaling.messages import Candidate, Role

logger = logging.getLogger(__name__)

MessageCallback = Callable[["SubscriberSession", DataMessage], Awaitable[None] | None]


class SubscriberSession:
    """Answers one subscriber's offer with the shared stream's tracks and serves its data channel."""

    def __init__(
        self,
        peer_id: str,
        role: Role,
        settings: RemoteSettings,
        stream: AVStream,
        on_message: MessageCallback,
        on_closed: Callable[[SubscriberSession], None],
        advertised_ice_servers: list[dict[str, Any]] | None = None,
        on_channel_open: Callable[[SubscriberSession], None] | None = None,
    ) -> None:
        self.peer_id = peer_id
        self.role = role
        self.settings = settings
        self.pc = RTCPeerConnection(rtc_configuration(settings.rtc_ice_servers(advertised_ice_servers)))
        self.endpoints: list[DataChannelEndpoint] = []
        self._stream = stream
        self._on_message = on_message
        self._on_closed = on_closed
        self._on_channel_open = on_channel_open
        self._closed = False
        self._close_task: asyncio.Future[None] | None = None
        self.log = logging.LoggerAdapter(logger, {"peer": peer_id})
        self.pc.on("datachannel", self._on_datachannel)
        self.pc.on("connectionstatechange", self._on_state)

    async def answer(self, offer_sdp: str) -> str:
        """Set the subscriber's offer, attach our tracks, return our answer SDP (ValueError if not allowed)."""
        check_sdp(offer_sdp, "offer")
        audio, video = self._stream.subscribe()
        # transceivers made before the offer is applied are matched to its m-lines, so the codec
        # preference takes part in the negotiation
        audio_transceiver = self.pc.addTransceiver(audio, direction="sendonly")
        video_transceiver = self.pc.addTransceiver(video, direction="sendonly")
        prefer_video_codec(video_transceiver, self.settings.codec)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        for transceiver, track in ((audio_transceiver, audio), (video_transceiver, video)):
            if transceiver.mid is None:
                track.stop()
                self.log.info("subscriber %s offered no %s; not sending it", self.peer_id, transceiver.kind)
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        return self.pc.localDescription.sdp

    async def add_candidate(self, message: Candidate) -> None:
        await add_remote_candidate(self.pc, message)

    def _on_datachannel(self, channel: object) -> None:
        endpoint = DataChannelEndpoint(channel, lambda m: self._on_message(self, m), name=f"dc:{self.peer_id}")  # type: ignore[arg-type]
        self.endpoints.append(endpoint)
        self.log.info("data channel %r open from %s", endpoint.name, self.peer_id)
        if self._on_channel_open is not None:
            self._on_channel_open(self)

    def send(self, message: DataMessage) -> None:
        for endpoint in self.endpoints:
            endpoint.send(message)

    def _on_state(self) -> None:
        state = self.pc.connectionState
        self.log.info("subscriber %s (%s) connection %s", self.peer_id, self.role.value, state)
        if state in ("failed", "closed") and self._close_task is None:
            self._close_task = asyncio.ensure_future(self.close())

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for endpoint in self.endpoints:
            endpoint.close()
        for sender in self.pc.getSenders():
            if sender.track is not None:
                sender.track.stop()
        await close_peer_connection(self.pc)
        self._on_closed(self)
