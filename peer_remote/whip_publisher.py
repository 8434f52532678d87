"""Publish the avatar's stream to a WHIP endpoint (RFC 9725), e.g. an SFU that fans it out to a large audience.

One more peer connection beside the subscribers, with the same tracks and encoder path as a subscriber's: one
encode, however many viewers the SFU serves. The session is kept up: when the SFU restarts or the connection
fails, it is published again after an exponential backoff (bounded).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from urllib.parse import urljoin

import aiohttp
from aiortc import RTCIceServer, RTCPeerConnection, RTCSessionDescription

from media.rtc.codecs import prefer_video_codec
from media.rtc.ice import rtc_configuration
from media.rtc.peer_connection import close_peer_connection
from media.rtc.sdp_policy import check_sdp
from media.stream import AVStream

logger = logging.getLogger(__name__)

SDP_TYPE = "application/sdp"
MAX_ANSWER_BYTES = 64 * 1024


class WhipError(RuntimeError):
    """The WHIP endpoint refused the offer or could not be reached."""


@dataclass(frozen=True)
class WhipTarget:
    """Where to publish and how: the endpoint URL, its bearer token, the timings of a session's life."""

    url: str
    token: str | None = None
    codec: str = "VP8"
    request_timeout_s: float = 15.0
    connect_timeout_s: float = 20.0
    backoff_min_s: float = 0.5
    backoff_max_s: float = 10.0


class WhipPublisher:
    """Keeps the stream published to one WHIP endpoint until stopped."""

    def __init__(self, target: WhipTarget, stream: AVStream, ice_servers: list[RTCIceServer] | None = None) -> None:
        self.target = target
        self._stream = stream
        self._ice_servers = ice_servers or []
        self.pc: RTCPeerConnection | None = None
        self.connected = asyncio.Event()  # set while a published session is connected
        self.sessions_started = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Publish, and publish again after each failure (backoff doubling up to its bound), until ``stop``."""
        backoff_s = self.target.backoff_min_s
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.target.request_timeout_s)) as http:
            while not stop.is_set():
                try:
                    if await self._publish_once(http, stop):
                        backoff_s = self.target.backoff_min_s  # it was up: the next failure is a new one
                except (WhipError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    logger.warning("WHIP publish to %s failed: %s", self.target.url, exc)
                except Exception:
                    logger.exception("WHIP publish to %s failed", self.target.url)
                if stop.is_set():
                    break
                logger.info("publishing to %s again in %.1f s", self.target.url, backoff_s)
                try:
                    async with asyncio.timeout(backoff_s):
                        await stop.wait()
                except TimeoutError:
                    pass
                backoff_s = min(backoff_s * 2, self.target.backoff_max_s)

    async def _publish_once(self, http: aiohttp.ClientSession, stop: asyncio.Event) -> bool:
        """One session: offer, answer, stay until it fails or ``stop``; True if it got connected."""
        pc = RTCPeerConnection(rtc_configuration(self._ice_servers))
        self.pc = pc
        self.sessions_started += 1
        ended = asyncio.Event()
        was_connected = False

        @pc.on("connectionstatechange")
        def _on_state() -> None:
            logger.info("WHIP session to %s: %s", self.target.url, pc.connectionState)
            if pc.connectionState == "connected":
                self.connected.set()
            elif pc.connectionState in ("failed", "closed"):
                ended.set()

        resource: str | None = None
        try:
            audio, video = self._stream.subscribe()
            pc.addTransceiver(audio, direction="sendonly")
            prefer_video_codec(pc.addTransceiver(video, direction="sendonly"), self.target.codec)
            await pc.setLocalDescription(await pc.createOffer())  # gathers: the offer holds our candidates
            resource, answer = await self._post_offer(http, pc.localDescription.sdp)
            check_sdp(answer, "answer")
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            try:
                async with asyncio.timeout(self.target.connect_timeout_s):
                    while pc.connectionState != "connected":
                        if ended.is_set():
                            raise WhipError(f"the connection {pc.connectionState} before it was up")
                        await _first_of(ended, self.connected, stop)
                        if stop.is_set():
                            return False
            except TimeoutError as exc:
                raise WhipError(f"not connected within {self.target.connect_timeout_s:g} s") from exc
            was_connected = True
            logger.info("publishing to %s (%s)", self.target.url, resource)
            await _first_of(ended, stop)
            return True
        finally:
            self.connected.clear()
            for sender in pc.getSenders():
                if sender.track is not None:
                    sender.track.stop()
            await close_peer_connection(pc)
            self.pc = None
            if resource is not None:
                await self._delete(http, resource)
            if was_connected and not stop.is_set():
                logger.warning("WHIP session to %s ended", self.target.url)

    async def _post_offer(self, http: aiohttp.ClientSession, sdp: str) -> tuple[str, str]:
        """POST the offer; the resource URL and the answer SDP (RFC 9725 section 4.2)."""
        headers = {"Content-Type": SDP_TYPE, **self._auth()}
        async with http.post(self.target.url, data=sdp, headers=headers) as response:
            body = await response.content.read(MAX_ANSWER_BYTES + 1)
            if response.status != 201:
                detail = body[:200].decode("utf-8", "replace").strip()
                raise WhipError(f"the endpoint answered {response.status}: {detail or response.reason}")
            if len(body) > MAX_ANSWER_BYTES:
                raise WhipError(f"the answer is larger than {MAX_ANSWER_BYTES} bytes")
            if response.content_type != SDP_TYPE:
                raise WhipError(f"the answer is {response.content_type!r}, not {SDP_TYPE}")
            location = response.headers.get("Location")
            if not location:
                raise WhipError("the endpoint's answer has no Location")
            answer = body.decode("utf-8")
            logger.debug("WHIP answer from %s:\n%s", self.target.url, answer)
            return urljoin(self.target.url, location), answer

    async def _delete(self, http: aiohttp.ClientSession, resource: str) -> None:
        """End the session at the endpoint (RFC 9725 section 4.3); an endpoint that is gone is fine."""
        try:
            async with http.delete(resource, headers=self._auth()) as response:
                if response.status >= 300 and response.status != 404:
                    logger.info("WHIP DELETE %s answered %s", resource, response.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.info("WHIP DELETE %s failed: %s", resource, exc)

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.target.token}"} if self.target.token else {}


async def _first_of(*events: asyncio.Event) -> None:
    """Return as soon as one of ``events`` is set (the caller bounds the wait)."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
