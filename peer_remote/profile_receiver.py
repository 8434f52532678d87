"""Remote side of profile sync: ask for what is not cached, receive it in checked chunks, prepare it once.

Files are cached by SHA-256 and name under the cache dir. Limits: only the five profile file names, each below its size
limit, each with the right content type (WAV, UTF-8 text, PNG, MP4, TOML persona). A profile is applied (persona,
reference voice, face) once per set of hashes; a reconnect with the same profile prepares nothing again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from media.profile.persona import PersonaError, parse_persona
from media.protocol import (
    PROFILE_CHUNK_BYTES,
    DataMessage,
    ProfileChunk,
    ProfileFile,
    ProfileOffer,
    ProfileRequest,
    ProfileStatus,
)

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
LIMITS = {
    "voice.wav": 20 * MIB,
    "voice.txt": 16 * 1024,
    "face.png": 10 * MIB,
    "face.mp4": 60 * MIB,
    "persona.toml": 64 * 1024,
}
Reply = Callable[[DataMessage], None]
Apply = Callable[[dict[str, Path]], Awaitable[None]]


class ProfileRejectedError(ValueError):
    """A file is not accepted: wrong type, too large, corrupted."""


def check_content(name: str, data: bytes) -> None:
    """The bytes are what the name says."""
    if name == "voice.wav" and not (data[:4] == b"RIFF" and data[8:12] == b"WAVE"):
        raise ProfileRejectedError("voice.wav is not a WAV file")
    if name == "face.png" and not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ProfileRejectedError("face.png is not a PNG image")
    if name == "face.mp4" and data[4:8] != b"ftyp":
        raise ProfileRejectedError("face.mp4 is not an MP4 file")
    if name in ("voice.txt", "persona.toml"):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProfileRejectedError(f"{name} is not UTF-8 text") from exc
        if name == "persona.toml":
            try:
                parse_persona(text)
            except PersonaError as exc:
                raise ProfileRejectedError(str(exc)) from exc


class ProfileCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "files").mkdir(parents=True, exist_ok=True)

    def path(self, entry: ProfileFile) -> Path:
        """Keyed by content and name: content checked as one kind of file is never served as another."""
        return self.root / "files" / f"{entry.sha256}-{entry.name}"

    def has(self, entry: ProfileFile) -> bool:
        return self.path(entry).is_file()


@dataclass
class _Incoming:
    entry: ProfileFile
    next_index: int = 0
    data: bytearray = field(default_factory=bytearray)


class ProfileReceiver:
    """One per remote peer; ``apply`` makes the files the avatar's (persona, voice, face)."""

    def __init__(self, cache: ProfileCache, apply: Apply, broadcast: Reply) -> None:
        self.cache = cache
        self.apply = apply
        self.broadcast = broadcast
        self.applied_key: tuple[str, ...] | None = None
        self.preparations = 0
        self.received_files = 0
        self._offer: list[ProfileFile] = []
        self._incoming: dict[str, _Incoming] = {}

    async def on_offer(self, offer: ProfileOffer, reply: Reply) -> None:
        names = [f.name for f in offer.files]
        try:
            if len(set(names)) != len(names):
                raise ProfileRejectedError("the offer names a file twice")
            if len({f.sha256 for f in offer.files}) != len(offer.files):
                # chunks are matched by hash: one content under two names would be checked as one kind only
                raise ProfileRejectedError("the offer gives two files the same content")
            for entry in offer.files:
                if entry.bytes > LIMITS[entry.name]:
                    raise ProfileRejectedError(
                        f"{entry.name} is {entry.bytes} bytes; the limit is {LIMITS[entry.name]}"
                    )
        except ProfileRejectedError as exc:
            logger.warning("profile %s rejected: %s", offer.profile, exc)
            reply(ProfileStatus(state="rejected", detail=str(exc)))
            return
        self._offer = list(offer.files)
        missing = [f for f in offer.files if not self.cache.has(f)]
        self._incoming = {f.sha256: _Incoming(f) for f in missing}
        reply(ProfileRequest(sha256=[f.sha256 for f in missing]))
        logger.info("profile %s offered: %d files, %d to fetch", offer.profile, len(offer.files), len(missing))
        if missing:
            reply(ProfileStatus(state="receiving", detail=f"{len(missing)} files"))
        else:
            await self._prepare(reply)

    async def on_chunk(self, chunk: ProfileChunk, reply: Reply) -> None:
        incoming = self._incoming.get(chunk.sha256)
        try:
            if incoming is None:
                raise ProfileRejectedError("a chunk of a file that was not requested")
            if chunk.index != incoming.next_index:
                raise ProfileRejectedError(f"chunk {chunk.index} arrived where {incoming.next_index} was expected")
            try:
                piece = base64.b64decode(chunk.data, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ProfileRejectedError("a chunk is not base64") from exc
            if len(piece) > PROFILE_CHUNK_BYTES or len(incoming.data) + len(piece) > incoming.entry.bytes:
                raise ProfileRejectedError(f"{incoming.entry.name} is larger than offered")
            incoming.data.extend(piece)
            incoming.next_index += 1
            if incoming.next_index < chunk.count:
                return
            data = bytes(incoming.data)
            if len(data) != incoming.entry.bytes or hashlib.sha256(data).hexdigest() != chunk.sha256:
                raise ProfileRejectedError(f"{incoming.entry.name} arrived corrupted (size or checksum)")
            check_content(incoming.entry.name, data)
        except ProfileRejectedError as exc:
            logger.warning("profile transfer refused: %s", exc)
            self._incoming.pop(chunk.sha256, None)
            reply(ProfileStatus(state="rejected", detail=str(exc)))
            return
        final = self.cache.path(incoming.entry)
        temporary = final.with_name(final.name + ".partial")
        temporary.write_bytes(data)
        os.replace(temporary, final)
        del self._incoming[chunk.sha256]
        self.received_files += 1
        logger.info("received %s (%d bytes)", incoming.entry.name, len(data))
        if not self._incoming:
            await self._prepare(reply)

    async def _prepare(self, reply: Reply) -> None:
        key = tuple(sorted(f.sha256 for f in self._offer))
        if key == self.applied_key:
            reply(ProfileStatus(state="ready", detail="already prepared"))
            return
        self.broadcast(ProfileStatus(state="preparing"))
        files: dict[str, Path] = {str(f.name): self.cache.path(f) for f in self._offer}
        try:
            await self.apply(files)
        except Exception as exc:  # a face or voice that cannot be prepared must not take the avatar down
            logger.exception("preparing the profile failed")
            self.broadcast(ProfileStatus(state="rejected", detail=f"preparation failed: {exc}"[:500]))
            return
        self.applied_key = key
        self.preparations += 1
        self.broadcast(ProfileStatus(state="ready"))
        logger.info("profile prepared (%d files)", len(files))
