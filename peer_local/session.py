"""One connection from the local peer to the avatar: offer, receive audio+video, data channel."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine, Sequence
from typing import Any

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from media.datachannel import DataChannelEndpoint
from media.events import Event
from media.rtc.codecs import prefer_video_codec
from media.rtc.ice import rtc_configuration
from media.rtc.peer_connection import close_peer_connection
from media.rtc.rendezvous import wait_event
from media.rtc.sdp_policy import check_sdp
from peer_local.settings import LocalSettings
from peer_local.sinks.base import MediaSink

logger = logging.getLogger(__name__)

DATA_CHANNEL_LABEL = "avatar"


class RemoteSession:
    """Receives the avatar's tracks into the sinks until the connection ends (``ended`` is set)."""

    def __init__(
        self,
        remote_id: str,
        settings: LocalSettings,
        sinks: Sequence[MediaSink],
        advertised_ice_servers: list[dict[str, Any]] | None = None,
    ) -> None:
        self.remote_id = remote_id
        self.settings = settings
        self.sinks = list(sinks)
        self.pc = RTCPeerConnection(rtc_configuration(settings.rtc_ice_servers(advertised_ice_servers)))
        self.ended = asyncio.Event()
        self.end_reason = ""
        self.media_started = asyncio.Event()
        self._frame_arrived = asyncio.Event()
        self.last_frame_at = 0.0  # monotonic time of the last frame of either kind
        self.started_at = time.monotonic()
        self._answered = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        for kind in ("audio", "video"):
            transceiver = self.pc.addTransceiver(kind, direction="recvonly")
            if kind == "video" and settings.codec:
                prefer_video_codec(transceiver, settings.codec)
        channel = self.pc.createDataChannel(DATA_CHANNEL_LABEL, ordered=True)
        self.endpoint = DataChannelEndpoint(channel, name=f"dc:{remote_id}")
        self.channel_open = asyncio.Event()
        self.channel_opened: Event[[]] = Event("channel_opened")
        channel.on("open", self._on_channel_open)
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)

    def _on_channel_open(self) -> None:
        self.channel_open.set()
        self.channel_opened.emit()

    async def create_offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def accept_answer(self, sdp: str) -> None:
        check_sdp(sdp, "answer")
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        self._answered.set()

    async def wait_answered(self) -> bool:
        return await wait_event(self._answered, self.settings.answer_timeout_s)

    def end(self, reason: str) -> None:
        if not self.ended.is_set():
            self.end_reason = reason
            self.ended.set()

    def _on_state(self) -> None:
        state = self.pc.connectionState
        logger.info("connection to remote %s: %s", self.remote_id, state)
        if state == "connected":
            for sink in self.sinks:
                sink.on_connection(True)
        elif state in ("failed", "closed"):
            self.end(f"connection {state}")

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._start_task(self._consume(track), f"consume-{track.kind}")

    def _start_task(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def media_flowing(self, within_s: float = 1.0) -> bool:
        """Frames arrived within the last ``within_s`` seconds."""
        return not self.ended.is_set() and time.monotonic() - self.last_frame_at < within_s

    async def _watch_media(self) -> None:
        """End the session when frames stop: a frozen or vanished avatar says no goodbye."""
        timeout = self.settings.media_timeout_s
        while not self.ended.is_set():
            self._frame_arrived.clear()
            if not await wait_event(self._frame_arrived, timeout):
                self.end(f"no media for {timeout:.0f} s")
                return

    async def _consume(self, track: MediaStreamTrack) -> None:
        video = track.kind == "video"
        try:
            while True:
                frame = await track.recv()
                arrival = time.time()
                self.last_frame_at = time.monotonic()
                self._frame_arrived.set()
                if not self.media_started.is_set():
                    self.media_started.set()
                    self._start_task(self._watch_media(), "media-watchdog")
                for sink in self.sinks:
                    try:
                        if video:
                            sink.on_video(frame, arrival)  # type: ignore[arg-type]
                        else:
                            sink.on_audio(frame, arrival)  # type: ignore[arg-type]
                    except Exception:
                        logger.exception("sink %s failed on a %s frame", type(sink).__name__, track.kind)
        except MediaStreamError:
            self.end(f"{track.kind} track ended")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.end("closed")
        self.endpoint.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await close_peer_connection(self.pc)
        for sink in self.sinks:
            sink.on_connection(False)
