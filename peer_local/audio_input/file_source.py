"""Any audio or video file through PyAV, in real time (like a microphone) or as fast as it decodes."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import av
import numpy as np

from media.clock import pacing_clock
from peer_local.audio_input.base import ASR_RATE, AudioChunk, AudioInputError
from peer_local.audio_input.resampling import MonoResampler16k

logger = logging.getLogger(__name__)

CHUNK_SAMPLES = 512  # 32 ms, the VAD's step


def decode_file(path: Path) -> Iterator[np.ndarray]:
    """16 kHz mono float32 blocks of a file's first audio stream."""
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise AudioInputError(f"cannot open {path}: {exc}") from exc
    with container:
        if not container.streams.audio:
            raise AudioInputError(f"{path} has no audio stream")
        resampler = MonoResampler16k()
        try:
            for frame in container.decode(audio=0):
                block = resampler.frame(frame)
                if block.size:
                    yield block
        except av.FFmpegError as exc:
            raise AudioInputError(f"cannot decode {path}: {exc}") from exc
        tail = resampler.flush()
        if tail.size:
            yield tail


def read_file(path: Path) -> np.ndarray:
    """The whole file as one 16 kHz mono float32 array."""
    blocks = list(decode_file(path))
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)


class FileAudioSource:
    """Plays a file into the pipeline; ``realtime`` paces chunks by their timestamps."""

    def __init__(self, path: Path, realtime: bool = True, trailing_silence_s: float = 1.0) -> None:
        if not path.is_file():
            raise AudioInputError(f"input file not found: {path}")
        self.path = path
        self.name = f"file:{path.name}"
        self.realtime = realtime
        self.trailing_silence_s = trailing_silence_s
        self._closed = threading.Event()

    async def chunks(self) -> AsyncIterator[AudioChunk]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[np.ndarray | BaseException | None] = asyncio.Queue(maxsize=64)
        worker = loop.run_in_executor(None, self._decode_into, queue, loop)
        start = pacing_clock()
        position = 0
        pending = np.zeros(0, dtype=np.float32)
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                if item is None:
                    break
                pending = np.concatenate([pending, item])
                while pending.size >= CHUNK_SAMPLES:
                    chunk, pending = pending[:CHUNK_SAMPLES], pending[CHUNK_SAMPLES:]
                    yield await self._paced(chunk, position, start)
                    position += CHUNK_SAMPLES
            # a little silence after the end, so a turn that ends with the file is still closed
            tail = np.concatenate([pending, np.zeros(int(self.trailing_silence_s * ASR_RATE), dtype=np.float32)])
            for offset in range(0, tail.size - CHUNK_SAMPLES + 1, CHUNK_SAMPLES):
                yield await self._paced(tail[offset : offset + CHUNK_SAMPLES], position, start)
                position += CHUNK_SAMPLES
        finally:
            self._closed.set()
            await worker

    async def _paced(self, samples: np.ndarray, position: int, start: float) -> AudioChunk:
        t = position / ASR_RATE
        if self.realtime:
            delay = start + t + samples.size / ASR_RATE - pacing_clock()
            if delay > 0:
                await asyncio.sleep(delay)  # a chunk is available once it has been "heard" in full
        return AudioChunk(samples, t)

    def _decode_into(
        self, queue: asyncio.Queue[np.ndarray | BaseException | None], loop: asyncio.AbstractEventLoop
    ) -> None:
        def put(item: np.ndarray | BaseException | None) -> bool:
            while not self._closed.is_set():
                future = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
                try:
                    future.result(timeout=0.5)
                    return True
                except TimeoutError:
                    future.cancel()
            return False

        try:
            for block in decode_file(self.path):
                if not put(block):
                    return
            put(None)
        except AudioInputError as exc:
            put(exc)

    async def close(self) -> None:
        self._closed.set()
