"""One source track, many subscribers (MediaRelay's job, with bounded queues and a stated policy).

The source is read once, so the producer renders once however many peers watch; each extra
subscriber gets a copy of the frame (a memcpy, not a re-render). Each subscriber has
its own bounded queue; when a subscriber falls behind, its oldest frames are dropped (video) or its
queue is trimmed to the bound (audio), so one slow peer never delays the others or grows memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import cast

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av.frame import Frame

logger = logging.getLogger(__name__)


def clone_frame(frame: Frame) -> Frame:
    """A private copy: aiortc encodes in worker threads, and PyAV frames (with their cached
    reformatter) must not be shared between two encoders running at once."""
    copy: Frame
    if isinstance(frame, av.VideoFrame):
        copy = av.VideoFrame.from_ndarray(frame.to_ndarray(), format=frame.format.name)
    elif isinstance(frame, av.AudioFrame):
        copy = av.AudioFrame.from_ndarray(frame.to_ndarray(), format=frame.format.name, layout=frame.layout.name)
        copy.sample_rate = frame.sample_rate
    else:
        return frame
    copy.pts = frame.pts
    copy.time_base = frame.time_base
    copy.opaque = frame.opaque  # the capture time (media.rtc.capture_time)
    return copy


class FanoutTrack(MediaStreamTrack):
    """A subscriber's view of a :class:`TrackFanout` source."""

    def __init__(self, fanout: TrackFanout, max_queue: int) -> None:
        super().__init__()
        self.kind = fanout.source.kind
        self._fanout = fanout
        self._queue: deque[Frame] = deque(maxlen=max_queue)
        self._ready = asyncio.Event()
        self.dropped = 0

    def _push(self, frame: Frame) -> None:
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append(frame)
        self._ready.set()

    async def recv(self) -> Frame:  # type: ignore[override]
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

    def stop(self) -> None:
        super().stop()
        self._ready.set()
        self._fanout._unsubscribe(self)


class TrackFanout:
    """Reads ``source`` while at least one subscriber exists and copies each frame to all of them."""

    def __init__(self, source: MediaStreamTrack, max_queue: int) -> None:
        self.source = source
        self.max_queue = max_queue
        self._subscribers: set[FanoutTrack] = set()
        self._task: asyncio.Task[None] | None = None
        self._wanted = asyncio.Event()

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def queue_stats(self) -> dict[str, int]:
        """Deepest subscriber queue now, and frames dropped for slow subscribers so far."""
        return {
            "queued_max": max((len(t._queue) for t in self._subscribers), default=0),
            "dropped": sum(t.dropped for t in self._subscribers),
        }

    def subscribe(self) -> FanoutTrack:
        track = FanoutTrack(self, self.max_queue)
        self._subscribers.add(track)
        self._wanted.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"fanout-{self.source.kind}")
        return track

    def _unsubscribe(self, track: FanoutTrack) -> None:
        self._subscribers.discard(track)
        if not self._subscribers:
            self._wanted.clear()

    async def close(self) -> None:
        for track in list(self._subscribers):
            track.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        try:
            while True:
                await self._wanted.wait()
                try:
                    frame = cast(Frame, await self.source.recv())
                except MediaStreamError:
                    break
                for position, track in enumerate(list(self._subscribers)):
                    track._push(frame if position == 0 else clone_frame(frame))
        finally:
            for track in list(self._subscribers):
                track.stop()
