"""Live capture from a sounddevice input (a microphone, or Stereo Mix / a monitor listed as an input)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from peer_local.audio_input.base import AudioChunk, AudioInputError
from peer_local.audio_input.devices import AudioDevice, capture_channels, load_sounddevice, wasapi_settings
from peer_local.audio_input.resampling import CaptureQueue, chunks_at_16k

logger = logging.getLogger(__name__)

BLOCK_S = 0.02
QUEUE_BLOCKS = 250  # 5 s; beyond that the oldest audio is dropped and logged


class DeviceAudioSource:
    """Captures at the device's own rate and channel count (a 4-channel microphone array is opened with 4 and
    downmixed: WASAPI refuses other counts), resampled once to 16 kHz mono."""

    def __init__(self, device: AudioDevice, kind: str = "mic") -> None:
        self.device = device
        self.name = f"{kind}:{device.name}"
        self._stream: Any = None
        self._queue: CaptureQueue | None = None
        self.overflows = 0

    async def chunks(self) -> AsyncIterator[AudioChunk]:
        sd = load_sounddevice()
        loop = asyncio.get_running_loop()
        queue: CaptureQueue = asyncio.Queue(maxsize=QUEUE_BLOCKS)
        self._queue = queue
        rate = int(self.device.default_samplerate) or 48_000
        channels = capture_channels(self.device)
        start = time.perf_counter()

        def on_block(data: np.ndarray, frames: int, _time: Any, status: Any) -> None:
            if status:
                self.overflows += 1
            block = (data.copy(), time.perf_counter() - start - frames / rate)

            def put() -> None:
                if queue.full():
                    queue.get_nowait()
                    logger.warning("audio capture is not being consumed fast enough; dropping 20 ms")
                queue.put_nowait(block)

            loop.call_soon_threadsafe(put)

        try:
            self._stream = sd.InputStream(
                device=self.device.index,
                samplerate=rate,
                channels=channels,
                dtype="float32",
                blocksize=int(rate * BLOCK_S),
                callback=on_block,
                extra_settings=wasapi_settings(self.device),
            )
            self._stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            raise AudioInputError(f"cannot open {self.device.describe()}: {exc} (is it busy or unplugged?)") from exc
        logger.info("capturing from %s", self.device.describe())
        try:
            async for chunk in chunks_at_16k(queue, rate, lambda: self.device.name):
                yield chunk
        finally:
            await self.close()

    async def close(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            stream.stop()
            stream.close()
