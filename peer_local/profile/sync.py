"""Local side of profile sync: offer the manifest when the data channel opens, stream what the remote asks for.

Files travel in bounded chunks (32 KiB raw each, base64 in JSON) in order; the remote checks size and SHA-256
and caches by hash, so a reconnect sends nothing twice.
"""

from __future__ import annotations

import asyncio
import base64
import logging

from media.datachannel import DataChannelEndpoint
from media.protocol import (
    PROFILE_CHUNK_BYTES,
    DataMessage,
    ProfileChunk,
    ProfileFile,
    ProfileOffer,
    ProfileRequest,
    ProfileStatus,
)
from media.rtc.rendezvous import wait_event
from peer_local.profile.store import Profile
from peer_local.service import LocalPeer

logger = logging.getLogger(__name__)

MAX_BUFFERED_BYTES = 512 * 1024  # do not queue more than this on the data channel at once


class ProfileSender:
    """Attach to a :class:`LocalPeer`; ``files`` are validated when the sender is made (a broken profile fails early)."""

    def __init__(self, peer: LocalPeer, profile: Profile) -> None:
        self.peer = peer
        self.profile = profile
        self.files: list[ProfileFile] = profile.load()
        self.chunks_sent = 0
        self.files_sent: list[str] = []
        self.status: ProfileStatus | None = None
        self.status_changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        peer.channel_opened.connect(self.offer)
        peer.message_received.connect(self.on_message)

    def offer(self) -> None:
        if self.peer.send(ProfileOffer(profile=self.profile.name, files=self.files)):
            logger.info("offered profile %s (%d files)", self.profile.name, len(self.files))

    def on_message(self, message: DataMessage) -> None:
        if isinstance(message, ProfileRequest) and message.sha256:
            if self._task is not None and not self._task.done():
                self._task.cancel()
            self._task = asyncio.create_task(self._send(message.sha256), name="profile-send")
        elif isinstance(message, ProfileStatus):
            self.status = message
            self.status_changed.set()
            logger.info("avatar profile: %s%s", message.state, f" ({message.detail})" if message.detail else "")

    async def _send(self, wanted: list[str]) -> None:
        by_hash = {f.sha256: f for f in self.files}
        for sha in wanted:
            entry = by_hash.get(sha)
            if entry is None:
                logger.warning("the avatar asked for %s, which is not in this profile", sha[:12])
                continue
            data = await asyncio.to_thread(self.profile.file(entry.name).read_bytes)
            count = max(1, -(-len(data) // PROFILE_CHUNK_BYTES))
            for index in range(count):
                endpoint = self.peer.endpoint
                if endpoint is None:
                    return  # the connection dropped: the next offer starts over
                try:
                    await self._room(endpoint)
                except ConnectionError as exc:
                    logger.warning("profile transfer stopped: %s", exc)
                    return
                piece = data[index * PROFILE_CHUNK_BYTES : (index + 1) * PROFILE_CHUNK_BYTES]
                chunk = ProfileChunk(sha256=sha, index=index, count=count, data=base64.b64encode(piece).decode("ascii"))
                if not endpoint.send(chunk):
                    return
                self.chunks_sent += 1
            self.files_sent.append(entry.name)
            logger.info("sent %s (%d bytes in %d chunks)", entry.name, len(data), count)

    @staticmethod
    async def _room(endpoint: DataChannelEndpoint, timeout_s: float = 30.0) -> None:
        """Wait (bounded) until the channel holds less than MAX_BUFFERED_BYTES."""
        channel = endpoint.channel
        if channel.bufferedAmount <= MAX_BUFFERED_BYTES:
            return
        drained = asyncio.Event()
        channel.bufferedAmountLowThreshold = MAX_BUFFERED_BYTES // 2
        channel.once("bufferedamountlow", drained.set)
        if not await wait_event(drained, timeout_s):
            raise ConnectionError(f"the data channel did not drain in {timeout_s:.0f} s")
