"""Resampling to the transport rate (48 kHz mono int16), once, where audio enters the producer."""

from __future__ import annotations

import av
import numpy as np

from media.frames import AUDIO_RATE


class Resampler48k:
    """Stateful int16 mono conversion from ``rate`` to 48 kHz (keeps filter history across blocks)."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=AUDIO_RATE)

    def convert(self, samples: np.ndarray) -> np.ndarray:
        if self.rate == AUDIO_RATE:
            return samples.astype(np.int16, copy=False)
        frame = av.AudioFrame.from_ndarray(samples.astype(np.int16).reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.rate
        return self._collect(self._resampler.resample(frame))

    def flush(self) -> np.ndarray:
        if self.rate == AUDIO_RATE:
            return np.zeros(0, dtype=np.int16)
        return self._collect(self._resampler.resample(None))

    @staticmethod
    def _collect(frames: list[av.AudioFrame]) -> np.ndarray:
        parts = [f.to_ndarray().reshape(-1) for f in frames]
        return np.concatenate(parts).astype(np.int16, copy=False) if parts else np.zeros(0, dtype=np.int16)
