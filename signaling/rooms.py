"""Rooms and the peers in them; enforces one ``remote`` per room and a viewer cap."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from pydantic import BaseModel

from signaling.messages import ErrorCode, MessageError, PeerInfo, Role

logger = logging.getLogger(__name__)


class TokenBucket:
    """Per-connection message rate limit."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._tokens = float(burst)
        self._stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


@dataclass(eq=False)
class Peer:
    """One member of a room: a WebSocket connection, or a WHEP viewer (``send`` delivers to either)."""

    peer_id: str
    role: Role
    room: str
    address: str
    send: Callable[[BaseModel], Awaitable[None]]
    bucket: TokenBucket
    joined_at: float = field(default_factory=time.monotonic)

    @property
    def info(self) -> PeerInfo:
        return PeerInfo(peer_id=self.peer_id, role=self.role)


@dataclass
class Room:
    name: str
    peers: dict[str, Peer] = field(default_factory=dict)

    @property
    def remote(self) -> Peer | None:
        return next((p for p in self.peers.values() if p.role is Role.REMOTE), None)

    def others(self, peer: Peer) -> list[Peer]:
        return [p for p in self.peers.values() if p is not peer]


class RoomRegistry:
    """All rooms of one server."""

    def __init__(self, max_viewers_per_room: int) -> None:
        self._rooms: dict[str, Room] = {}
        self._max_viewers = max_viewers_per_room

    @property
    def rooms(self) -> list[Room]:
        return list(self._rooms.values())

    @property
    def peer_count(self) -> int:
        return sum(len(r.peers) for r in self._rooms.values())

    def all_peers(self) -> list[Peer]:
        return [p for r in self._rooms.values() for p in r.peers.values()]

    def room(self, name: str) -> Room | None:
        return self._rooms.get(name)

    def admit(self, room_name: str, role: Role) -> None:
        """Raise :class:`MessageError` if a peer of ``role`` may not join ``room_name`` now."""
        room = self._rooms.get(room_name)
        if room is None:
            return
        if role is Role.REMOTE and room.remote is not None:
            raise MessageError(ErrorCode.ROLE_TAKEN, f"room {room_name!r} already has a remote peer")
        viewers = sum(1 for p in room.peers.values() if p.role is Role.VIEWER)
        if role is Role.VIEWER and viewers >= self._max_viewers:
            raise MessageError(ErrorCode.ROOM_FULL, f"room {room_name!r} has its maximum of {viewers} viewers")

    def join(
        self,
        room_name: str,
        role: Role,
        address: str,
        send: Callable[[BaseModel], Awaitable[None]],
        bucket: TokenBucket,
    ) -> Peer:
        self.admit(room_name, role)
        room = self._rooms.setdefault(room_name, Room(room_name))
        peer = Peer(secrets.token_hex(6), role, room_name, address, send, bucket)
        room.peers[peer.peer_id] = peer
        return peer

    def leave(self, peer: Peer) -> None:
        room = self._rooms.get(peer.room)
        if room is None:
            return
        room.peers.pop(peer.peer_id, None)
        if not room.peers:
            del self._rooms[peer.room]
