"""The one resampling step: any rate and channel count to 16 kHz mono float32."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import av
import numpy as np

from peer_local.audio_input.base import ASR_RATE, AudioChunk, AudioInputError

CaptureQueue = asyncio.Queue[tuple[np.ndarray, float] | BaseException]
NO_AUDIO_TIMEOUT_S = 5.0


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


async def chunks_at_16k(queue: CaptureQueue, rate: int, name: Callable[[], str]) -> AsyncIterator[AudioChunk]:
    """A capture thread's blocks (samples at ``rate``, capture time in s) as 16 kHz mono chunks on one clock; an
    exception the thread puts on ``queue`` is raised here, and 5 s without audio is an :class:`AudioInputError`
    naming the device (``name()``, asked then: the device may have changed)."""
    resampler = MonoResampler16k()
    position = 0
    try:
        while True:
            async with asyncio.timeout(NO_AUDIO_TIMEOUT_S):
                item = await queue.get()
            if isinstance(item, BaseException):
                raise item
            data, t = item
            samples = resampler.samples(data, rate)
            if samples.size:
                yield AudioChunk(samples, max(t, position / ASR_RATE))
                position += samples.size
    except TimeoutError as exc:
        raise AudioInputError(f"{name()} delivered no audio for {NO_AUDIO_TIMEOUT_S:.0f} s") from exc
