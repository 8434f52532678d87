"""A receive-only aiortc peer that hands every decoded frame to listeners, with the local peer's low-latency
receive buffers: the viewer that ``bench viewers`` and the SFU tests measure with, whoever sends the offer."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import aiohttp
import av
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription

from media.rtc import patches

FrameListener = Callable[[av.VideoFrame | av.AudioFrame, float], None]


class ReceivingPeer:
    """One viewer's peer connection: frames to ``on_video``/``on_audio`` with their arrival (epoch seconds)."""

    def __init__(self, on_video: FrameListener, on_audio: FrameListener) -> None:
        patches.install()  # low-latency buffers on every receiver, as the laptop has
        self.pc = RTCPeerConnection()
        self._listeners = {"video": on_video, "audio": on_audio}
        self._readers: set[asyncio.Task[None]] = set()
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        task = asyncio.create_task(self._read(track, self._listeners[track.kind]))
        self._readers.add(task)
        task.add_done_callback(self._readers.discard)

    @staticmethod
    async def _read(track: MediaStreamTrack, listener: FrameListener) -> None:
        with contextlib.suppress(Exception):  # the track ends (MediaStreamError) when the connection closes
            while True:
                frame = await track.recv()
                listener(frame, time.time())  # type: ignore[arg-type]

    async def answer(self, offer_sdp: str) -> str:
        """The answer to a sender's offer (an SFU offers to its subscribers)."""
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription.sdp

    async def watch_whep(self, url: str, token: str, timeout_s: float = 20.0) -> str:
        """Play a WHEP endpoint (receive-only offer, 201 + answer); returns the session's location."""
        self.pc.addTransceiver("audio", direction="recvonly")
        self.pc.addTransceiver("video", direction="recvonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/sdp"}
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as http,
            http.post(url, data=self.pc.localDescription.sdp, headers=headers) as response,
        ):
            if response.status != 201:
                raise RuntimeError(f"WHEP {url} answered {response.status}: {await response.text()}")
            answer, location = await response.text(), response.headers["Location"]
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        return location

    async def close(self) -> None:
        await self.pc.close()
        for task in list(self._readers):
            task.cancel()
