"""Who holds the floor: the local peer reports when someone in the meeting speaks (``speech`` messages); the
avatar waits for them to finish before its answer's first audio."""

from __future__ import annotations

import asyncio
import logging

logger = logging.getLogger(__name__)


class Floor:
    """Free unless someone is speaking; ``wait_free`` is bounded by its caller's limit."""

    def __init__(self) -> None:
        self._free = asyncio.Event()
        self._free.set()
        self.holds = 0  # answers that waited for someone to finish
        self.held = asyncio.Event()  # set when an answer starts waiting
        self.starts = 0
        self.stops = 0

    @property
    def free(self) -> bool:
        return self._free.is_set()

    def speech_started(self) -> None:
        self.starts += 1
        self._free.clear()

    def speech_stopped(self) -> None:
        self.stops += 1
        self._free.set()

    async def wait_free(self, limit_s: float) -> bool:
        """True once nobody speaks; False if someone is still speaking after ``limit_s`` seconds."""
        if self._free.is_set():
            return True
        self.holds += 1
        self.held.set()
        try:
            async with asyncio.timeout(limit_s):
                await self._free.wait()
        except TimeoutError:
            return False
        return True
