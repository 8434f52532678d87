"""The one resampling step: any rate and channel count to 16 kHz mono float32."""

from __future__ import annotations

import av
import numpy as np

from peer_local.audio_input.base import ASR_RATE


class MonoResampler16k:
    """Stateful (keeps filter history across chunks) conversion through libswresample."""

    def __init__(self) -> None:
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=ASR_RATE)

    def frame(self, frame: av.AudioFrame) -> np.ndarray:
        frame.pts = None  # timing is ours, not the resampler's
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        return np.concatenate(out).astype(np.float32, copy=False) if out else np.zeros(0, dtype=np.float32)

    def samples(self, samples: np.ndarray, rate: int) -> np.ndarray:
        """``samples``: float32 (frames, channels) or (frames,) at ``rate``."""
        data = samples if samples.ndim == 2 else samples[:, None]
        if data.shape[1] > 1:  # the mean of every channel (a microphone array, a 7.1 output's loopback): no clipping
            data = data.mean(axis=1, keepdims=True)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(data.astype(np.float32).reshape(1, -1)), format="flt", layout="mono"
        )
        frame.sample_rate = rate
        return self.frame(frame)

    def flush(self) -> np.ndarray:
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(None)]
        return np.concatenate(out).astype(np.float32, copy=False) if out else np.zeros(0, dtype=np.float32)
