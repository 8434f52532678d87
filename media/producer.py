"""The A/V producer interface and the scheduler that runs it a bounded distance ahead of the clock."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from media.clock import MediaClock
from media.events import Event
from media.frames import AVChunk, FrameSlot

logger = logging.getLogger(__name__)


class AVProducer(Protocol):
    """Yields the content for consecutive frame slots: speech with its face, or idle motion and silence."""

    width: int
    height: int

    async def produce(self, slot: FrameSlot) -> AVChunk:
        """Content for ``slot``; heavy rendering belongs in an executor, not on the loop."""
        ...

    def clear(self) -> None:
        """Drop queued speech (an interruption); following slots are idle."""
        ...


@dataclass
class SchedulerStats:
    produced: int = 0
    late: int = 0
    missed_video: int = 0
    missed_audio: int = 0
    cleared: int = 0
    reanchored: int = 0
    failed: int = 0


class AVScheduler:
    """Runs a producer up to ``lookahead_s`` ahead of the media clock into a bounded buffer.

    Tracks take chunks at their due time; a chunk not ready by then is skipped (the track repeats the
    last frame or plays silence), so the tracks never stall on the producer.
    """

    def __init__(self, producer: AVProducer, clock: MediaClock, fps: int, lookahead_s: float = 0.2) -> None:
        if 48_000 % fps:
            raise ValueError(f"fps must divide 48000 (got {fps})")
        self.producer = producer
        self.clock = clock
        self.fps = fps
        self.capacity = max(1, math.ceil(lookahead_s * fps))
        self.stats = SchedulerStats()
        self._chunks: OrderedDict[int, AVChunk] = OrderedDict()
        self._next_index = 0
        self._task: asyncio.Task[None] | None = None
        self._room = asyncio.Event()
        self._generation = 0
        # (kind, chunk): a track has just handed (the start of) the chunk to the encoders
        self.sent: Event[[str, AVChunk]] = Event("sent")

    def slot(self, index: int) -> FrameSlot:
        return FrameSlot(index, self.fps)

    def current_index(self) -> int:
        return max(0, math.floor(self.clock.now() * self.fps))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="av-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def clear(self) -> None:
        """Interrupt: drop everything buffered and tell the producer; takes effect on the next slot."""
        self._generation += 1
        self.producer.clear()
        self._chunks.clear()
        self._next_index = self.current_index() + 1
        self.stats.cleared += 1
        self._room.set()

    def flush_idle(self) -> int:
        """Speech just became available: drop idle chunks rendered ahead so it starts on the next slot
        instead of after the lookahead. Returns how many were dropped."""
        first_free = self.current_index() + 1
        idle = [i for i, c in self._chunks.items() if i >= first_free and not c.speaking]
        if not idle or any(c.speaking for i, c in self._chunks.items() if i >= first_free):
            return 0
        for index in idle:
            del self._chunks[index]
        self._generation += 1  # a chunk being produced now is idle too: discard it
        self._next_index = first_free
        self._room.set()
        return len(idle)

    def notify_sent(self, kind: str, chunk: AVChunk) -> None:
        """A track has just handed (the start of) ``chunk`` to the encoders."""
        self.sent.emit(kind, chunk)

    def chunk_for(self, index: int) -> AVChunk | None:
        """The chunk for slot ``index`` if it was ready in time (tracks call this at the due time)."""
        return self._chunks.get(index)

    def _prune(self, now_index: int) -> None:
        while self._chunks and next(iter(self._chunks)) < now_index - 2:
            self._chunks.popitem(last=False)

    async def _run(self) -> None:
        try:
            while True:
                now_index = self.current_index()
                if self._next_index < now_index:
                    # we fell behind (stall or slow producer): re-anchor on the present, skip the past
                    self.stats.reanchored += 1
                    self._next_index = now_index
                self._prune(now_index)
                if self._next_index - now_index >= self.capacity:
                    self._room.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(1.0 / self.fps):
                            await self._room.wait()
                    continue
                index = self._next_index
                generation = self._generation
                try:
                    chunk = await self.producer.produce(self.slot(index))
                except Exception:
                    self.stats.failed += 1
                    if self.stats.failed in (1, 10, 100) or self.stats.failed % 1000 == 0:
                        logger.exception(
                            "A/V producer failed on slot %d (%d failures); idle content instead",
                            index,
                            self.stats.failed,
                        )
                    self._next_index = index + 1
                    await self.clock.sleep_until(self.slot(index).pts_s)
                    continue
                if generation != self._generation:
                    continue  # cleared while producing: discard
                self._next_index = index + 1
                if index < self.current_index():
                    self.stats.late += 1
                    continue
                self._chunks[index] = chunk
                self.stats.produced += 1
        finally:
            logger.debug("A/V scheduler stopped after %d chunks", self.stats.produced)


def repeat_or_blank(last: np.ndarray | None, width: int, height: int) -> np.ndarray:
    """Frame to show when a chunk is missing: the previous one, or black before the first."""
    if last is not None:
        return last
    return np.zeros((height, width, 3), dtype=np.uint8)
