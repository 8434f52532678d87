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
        loud = np.flatnonzero(np.abs(block.astype(np.int32)) >= self.level)
        if not loud.size:
            self.dropped += block.size
            return block[:0]
        self.heard = True
        start = max(0, int(loud[0]) - self.keep)
        self.dropped += start
        return block[start:]
