"""Bench-only: stamp each outgoing frame with its slot, due time and whether its audio is speech, so a
receiver can time the avatar's answer on both tracks. Never used in a meeting (it paints the top rows)."""

from __future__ import annotations

import numpy as np

from media.clock import MediaClock
from media.frames import AVChunk, FrameSlot
from media.producer import AVProducer
from media.test_pattern import read_stamp, write_stamp

SPEAKING_BIT = 1 << 31
SPEECH_LEVEL = 1_000


class StampingProducer:
    """Wraps a producer; bit 31 of the stamped index says 'this frame's audio is speech'."""

    def __init__(self, inner: AVProducer, clock: MediaClock) -> None:
        self.inner = inner
        self.clock = clock
        self.width = inner.width
        self.height = inner.height

    def clear(self) -> None:
        self.inner.clear()

    async def produce(self, slot: FrameSlot) -> AVChunk:
        chunk = await self.inner.produce(slot)
        video = chunk.video.copy()
        loud = chunk.speaking and int(np.abs(chunk.audio.astype(np.int32)).max()) >= SPEECH_LEVEL
        write_stamp(video, slot.index | (SPEAKING_BIT if loud else 0), self.clock.wall_time(slot.pts_s))
        return AVChunk(slot=chunk.slot, video=video, audio=chunk.audio, speaking=chunk.speaking, meta=chunk.meta)


def read_speaking(luma: np.ndarray, now: float) -> bool | None:
    """From a received frame: is its audio speech? None if the frame carries no stamp."""
    stamp = read_stamp(luma, now=now)
    return None if stamp is None else bool(stamp.index & SPEAKING_BIT)
