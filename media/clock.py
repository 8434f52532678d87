"""One media clock per session: absolute scheduling against a fixed start, so nothing drifts."""

from __future__ import annotations

import asyncio
import time

# The clock every frame-pacing loop reads. Not ``time.monotonic``: on Windows (Python 3.11) it ticks in
# 15.6 ms steps (GetTickCount64), which makes a 25 fps schedule jitter by 40 %; ``perf_counter``
# (QueryPerformanceCounter) resolves well under a microsecond on every OS and is monotonic too.
pacing_clock = time.perf_counter


class MediaClock:
    """Maps media time (seconds since start) to wall and monotonic time.

    Tracks schedule each frame at ``start + pts`` (never relative sleeps). ``reanchor`` moves the
    start forward after a stall so that frames are skipped rather than sent in a burst.
    """

    def __init__(self) -> None:
        self._start_mono = pacing_clock()
        self._start_wall = time.time()

    def now(self) -> float:
        """Media time in seconds."""
        return pacing_clock() - self._start_mono

    def wall_time(self, media_time: float) -> float:
        """Epoch seconds at which ``media_time`` is (or was) due."""
        return self._start_wall + media_time

    async def sleep_until(self, media_time: float) -> None:
        delay = media_time - self.now()
        if delay > 0:
            await asyncio.sleep(delay)
