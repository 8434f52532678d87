"""aiortc output tracks that pull from one :class:`AVScheduler` on one media clock."""

from __future__ import annotations

import fractions
import logging
import math

import av
import numpy as np
from aiortc import MediaStreamTrack

from media.frames import AUDIO_FRAME_SAMPLES, AUDIO_RATE
from media.producer import AVScheduler, repeat_or_blank
from media.rtc.capture_time import stamp_capture_time

logger = logging.getLogger(__name__)

VIDEO_CLOCK_RATE = 90_000
STALL_SLOTS = 3  # behind by more than this many frames: skip ahead instead of bursting


class VideoOutputTrack(MediaStreamTrack):
    """25 fps (configurable) RGB frames, each due at ``start + index / fps`` on the media clock."""

    kind = "video"

    def __init__(self, scheduler: AVScheduler, width: int, height: int) -> None:
        super().__init__()
        self.scheduler = scheduler
        self.width = width
        self.height = height
        self._index: int | None = None
        self._last: np.ndarray | None = None
        self._time_base = fractions.Fraction(1, VIDEO_CLOCK_RATE)
        self.frames_sent = 0
        self.skipped = 0
        self.last_chunk_meta: dict[str, object] = {}

    async def recv(self) -> av.VideoFrame:  # type: ignore[override]
        scheduler = self.scheduler
        clock = scheduler.clock
        fps = scheduler.fps
        if self._index is None:
            self._index = math.ceil(clock.now() * fps)
        else:
            self._index += 1
            behind = math.floor(clock.now() * fps) - self._index
            if behind > STALL_SLOTS:
                self.skipped += behind
                self._index += behind
        index = self._index
        await clock.sleep_until(index / fps)
        chunk = scheduler.chunk_for(index)
        if chunk is None:
            scheduler.stats.missed_video += 1
            image = repeat_or_blank(self._last, self.width, self.height)
        else:
            image = chunk.video
            self.last_chunk_meta = chunk.meta
            scheduler.notify_sent("video", chunk)
        self._last = image
        # converted once here rather than once per subscriber's encoder
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        frame.pts = index * VIDEO_CLOCK_RATE // fps
        frame.time_base = self._time_base
        stamp_capture_time(frame, clock.wall_time(index / fps))
        self.frames_sent += 1
        return frame


class AudioOutputTrack(MediaStreamTrack):
    """48 kHz mono 20 ms frames cut from the scheduler's chunks; silence when a chunk is missing."""

    kind = "audio"

    def __init__(self, scheduler: AVScheduler) -> None:
        super().__init__()
        self.scheduler = scheduler
        self._index: int | None = None  # 20 ms frame number
        self._time_base = fractions.Fraction(1, AUDIO_RATE)
        self.frames_sent = 0
        self.skipped = 0

    async def recv(self) -> av.AudioFrame:  # type: ignore[override]
        scheduler = self.scheduler
        clock = scheduler.clock
        frame_s = AUDIO_FRAME_SAMPLES / AUDIO_RATE
        if self._index is None:
            self._index = math.ceil(clock.now() / frame_s)
        else:
            self._index += 1
            behind = math.floor(clock.now() / frame_s) - self._index
            if behind > STALL_SLOTS * 2:
                self.skipped += behind
                self._index += behind
        index = self._index
        await clock.sleep_until(index * frame_s)
        samples = self._samples(index)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = index * AUDIO_FRAME_SAMPLES
        frame.time_base = self._time_base
        stamp_capture_time(frame, clock.wall_time(index * frame_s))
        self.frames_sent += 1
        return frame

    def _samples(self, index: int) -> np.ndarray:
        first = index * AUDIO_FRAME_SAMPLES
        per_slot = AUDIO_RATE // self.scheduler.fps
        out = np.zeros(AUDIO_FRAME_SAMPLES, dtype=np.int16)
        position = first
        while position < first + AUDIO_FRAME_SAMPLES:
            slot_index, offset = divmod(position, per_slot)
            take = min(per_slot - offset, first + AUDIO_FRAME_SAMPLES - position)
            chunk = self.scheduler.chunk_for(slot_index)
            if chunk is not None:
                out[position - first : position - first + take] = chunk.audio[offset : offset + take]
                if offset == 0:
                    self.scheduler.notify_sent("audio", chunk)
            elif offset == 0 or position == first:
                self.scheduler.stats.missed_audio += 1
            position += take
        return out
