"""The avatar's A/V producer: queued speech audio (48 kHz) paired slot by slot with face frames."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass

import numpy as np

from media.events import Event
from media.frames import AUDIO_RATE, AVChunk, FrameSlot
from peer_remote.face.base import FaceAnimator

logger = logging.getLogger(__name__)

MAX_QUEUED_S = 20.0  # TTS runs ahead of real time; beyond this it waits (back-pressure)


@dataclass
class _Speech:
    turn_id: str
    samples: np.ndarray


class AvatarProducer:
    """Speaks what was queued, face in step; idle (silence, idle motion) when nothing is queued."""

    def __init__(self, face: FaceAnimator) -> None:
        self.face = face
        self.width = face.width
        self.height = face.height
        self._queue: deque[_Speech] = deque()
        self._queued_samples = 0
        self._ended: set[str] = set()
        self._room = asyncio.Event()
        self._room.set()
        # (turn_id, index of the slot that took its last audio, or None if nothing was left queued)
        self.drained: Event[[str, int | None]] = Event("drained")

    @property
    def queued_s(self) -> float:
        """Seconds of speech queued and not yet played."""
        return self._queued_samples / AUDIO_RATE

    async def enqueue(self, turn_id: str, samples: np.ndarray) -> None:
        """Queue 48 kHz int16 speech; waits while more than ``MAX_QUEUED_S`` is already queued."""
        while self._queued_samples > MAX_QUEUED_S * AUDIO_RATE:
            self._room.clear()
            await self._room.wait()
        if samples.size:
            if self.face.needs_speech_ahead:  # MuseTalk computes its audio features before rendering
                await asyncio.get_running_loop().run_in_executor(None, self.face.observe_speech, samples)
            self._queue.append(_Speech(turn_id, samples.astype(np.int16, copy=False)))
            self._queued_samples += samples.size

    def finish(self, turn_id: str) -> None:
        """No more audio will come for ``turn_id``; ``drained`` fires once it has all been produced."""
        self._ended.add(turn_id)
        if not any(s.turn_id == turn_id for s in self._queue):
            self._drained(turn_id, None)

    def clear(self) -> None:
        self._queue.clear()
        self._queued_samples = 0
        self._ended.clear()
        self._room.set()
        self.face.reset_speech()

    def _take(self, count: int, slot_index: int) -> tuple[np.ndarray, str | None]:
        out = np.zeros(count, dtype=np.int16)
        filled = 0
        turn_id = None
        while filled < count and self._queue:
            head = self._queue[0]
            turn_id = head.turn_id
            take = min(count - filled, head.samples.size)
            out[filled : filled + take] = head.samples[:take]
            head.samples = head.samples[take:]
            filled += take
            if not head.samples.size:
                self._queue.popleft()
                if head.turn_id in self._ended and not any(s.turn_id == head.turn_id for s in self._queue):
                    self._drained(head.turn_id, slot_index)
        self._queued_samples -= filled
        if self._queued_samples <= MAX_QUEUED_S * AUDIO_RATE:
            self._room.set()
        return out, (turn_id if filled else None)

    def _drained(self, turn_id: str, slot_index: int | None) -> None:
        self._ended.discard(turn_id)
        self.drained.emit(turn_id, slot_index)

    async def produce(self, slot: FrameSlot) -> AVChunk:
        audio, turn_id = self._take(slot.audio_samples, slot.index)
        speaking = turn_id is not None
        image = await asyncio.get_running_loop().run_in_executor(None, self.face.render, slot, audio, speaking)
        return AVChunk(
            slot=slot, video=image, audio=audio, speaking=speaking, meta={"turn_id": turn_id} if speaking else {}
        )
