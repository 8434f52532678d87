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
