"""Several rooms on one box: one :class:`RemotePeer` and its own clone per room, sharing the models.

Shared: the LLM (a server client, or the embedded model whose lock runs one generation at a time), the TTS (a
server client, or the loaded voice) and the face models. Per room: conversation, floor, take-over state, persona,
voice reference and prepared face (:class:`~peer_remote.avatar.Avatar`), the media clock and the subscribers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from peer_remote.avatar import CloneBackends
from peer_remote.service import RemotePeer
from peer_remote.settings import RemoteSettings

logger = logging.getLogger(__name__)


class RoomHost:
    """Serves each named room with its own clone until stopped; one room failing to join stops none of the others
    (each reconnects to signaling on its own)."""

    def __init__(self, settings: RemoteSettings, rooms: Sequence[str]) -> None:
        if not rooms:
            raise ValueError("name at least one room")
        if len(set(rooms)) != len(rooms):
            raise ValueError(f"a room is named twice: {', '.join(rooms)}")
        self.backends = CloneBackends.build(settings) if settings.source == "avatar" else None
        self.peers: dict[str, RemotePeer] = {}
        for room in rooms:
            own = self.backends.with_own_face(settings.face_image) if self.backends is not None else None
            self.peers[room] = RemotePeer(settings.model_copy(update={"room": room}), own)

    async def prepare(self) -> None:
        """Each clone in turn: the first loads the shared models, the others only prepare their own faces."""
        for room, peer in self.peers.items():
            logger.info("preparing the clone of room %s", room)
            await peer.avatar.prepare()

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await self.prepare()
            async with asyncio.TaskGroup() as group:
                for room, peer in self.peers.items():
                    group.create_task(peer.run(stop), name=f"room-{room}")
        finally:
            if self.backends is not None:
                await self.backends.close()  # every room's clone has closed its own voice by now
