"""Small audio conversions shared by sinks and meters."""

from __future__ import annotations

import av
import numpy as np


def mono_int16(frame: av.AudioFrame) -> np.ndarray:
    """A decoded frame as mono int16 samples (first channel of interleaved or planar audio)."""
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if frame.format.name not in ("s16", "s16p"):
        data = (np.clip(data.astype(np.float32), -1.0, 1.0) * 32767).astype(np.int16)
    if frame.format.is_planar:
        return np.ascontiguousarray(data[0])
    return np.ascontiguousarray(data.reshape(-1, channels)[:, 0]) if channels > 1 else data.reshape(-1)


def audible(block: np.ndarray, level: int) -> np.ndarray:
    """Indices of the samples of int16 ``block`` at or above ``level`` (absolute amplitude)."""
    return np.flatnonzero(np.abs(block.astype(np.int32)) >= level)


class TrailingQuietHolder:
    """Holds back the near-silence at the end of what it was fed: it is played before the next audible sample (a
    pause inside the clause), or cut to ``keep_s`` where the clause ends (:meth:`end`). Audible audio is never
    delayed: only the quiet after it waits."""

    def __init__(self, rate: int, level: int = 150) -> None:
        self.rate = rate
        self.level = level  # int16 amplitude: about -47 dBFS, as LeadingQuietTrimmer's
        self._held = np.zeros(0, np.int16)
        self.dropped = 0  # samples cut at the ends

    def feed(self, block: np.ndarray) -> np.ndarray:
        if not block.size:
            return block
        loud = audible(block, self.level)
        if not loud.size:
            self._held = np.concatenate([self._held, block])
            return block[:0]
        last = int(loud[-1]) + 1
        out = np.concatenate([self._held, block[:last]]) if self._held.size else block[:last]
        self._held = block[last:].copy()
        return out

    def end(self, keep_s: float) -> np.ndarray:
        """The clause has ended: up to ``keep_s`` of the quiet held back (the rest is dropped)."""
        kept = self._held[: int(self.rate * keep_s)]
        self.dropped += self._held.size - kept.size
        self._held = self._held[:0]
        return kept


class LeadingQuietTrimmer:
    """Drops the near-silence a synthesized answer starts with (Piper's voice starts 10-80 ms before it is
    audible), so the first sound comes that much sooner; ``keep_s`` of lead-in stays. After the first audible
    sample every block passes whole."""

    def __init__(self, rate: int, level: int = 150, keep_s: float = 0.005) -> None:
        self.level = level  # int16 amplitude: about -47 dBFS
        self.keep = int(rate * keep_s)
        self.heard = False
        self.dropped = 0  # samples dropped

    def feed(self, block: np.ndarray) -> np.ndarray:
        if self.heard or not block.size:
            return block
        loud = audible(block, self.level)
        if not loud.size:
            self.dropped += block.size
            return block[:0]
        self.heard = True
        start = max(0, int(loud[0]) - self.keep)
        self.dropped += start
        return block[start:]
