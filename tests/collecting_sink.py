"""A sink for tests: keeps what arrives and wakes waiters when enough has."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import av
import numpy as np

from media.audio import mono_int16
from media.test_pattern import luma_plane, read_stamp


@dataclass
class CollectingSink:
    video_sizes: list[tuple[int, int]] = field(default_factory=list)
    video_pts: list[int] = field(default_factory=list)
    stamp_indices: list[int] = field(default_factory=list)
    audio_pts: list[int] = field(default_factory=list)
    audio_samples: list[int] = field(default_factory=list)
    audio_peaks: list[int] = field(default_factory=list)
    connections: list[bool] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_video(self, frame: av.VideoFrame, arrival: float) -> None:
        self.video_sizes.append((frame.width, frame.height))
        self.video_pts.append(int(frame.pts or 0))
        stamp = read_stamp(luma_plane(frame), now=arrival)
        if stamp is not None:
            self.stamp_indices.append(stamp.index)
        self.changed.set()

    def on_audio(self, frame: av.AudioFrame, arrival: float) -> None:
        samples = mono_int16(frame)
        self.audio_pts.append(int(frame.pts or 0))
        self.audio_samples.append(samples.size)
        self.audio_peaks.append(int(np.abs(samples.astype(np.int32)).max()))
        self.changed.set()

    def on_connection(self, connected: bool) -> None:
        self.connections.append(connected)
        self.changed.set()

    async def close(self) -> None:
        return None

    async def wait_until(self, predicate: object, timeout_s: float = 20.0) -> None:
        """Wait (bounded) until ``predicate(self)`` holds, re-checking on every frame."""
        async with asyncio.timeout(timeout_s):
            while not predicate(self):  # type: ignore[operator]
                self.changed.clear()
                await self.changed.wait()
