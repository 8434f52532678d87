"""A measurable source: moving bars, a pixel stamp (frame number + send time), and every second a
white flash with a tone burst, so latency and A/V offset can be read at any receiver."""

from __future__ import annotations

import time
from dataclasses import dataclass

import av
import numpy as np

from media.clock import MediaClock
from media.frames import AUDIO_RATE, AVChunk, FrameSlot

STAMP_BITS = 32
STAMP_ROWS = 3
TONE_HZ = 1000.0
TONE_AMPLITUDE = 0.5
BURST_S = 0.08
_CHECK_MAGIC = 0xA5A5A5A5


def stamp_block(width: int) -> int:
    """Edge of one stamp bit in pixels: 32 bits span the frame width."""
    return max(4, width // STAMP_BITS)


def _check(index: int, time_ms: int) -> int:
    return ((index * 2654435761) ^ time_ms ^ _CHECK_MAGIC) & 0xFFFFFFFF


@dataclass(frozen=True)
class Stamp:
    """What a test-pattern frame says about itself."""

    index: int
    send_time: float  # epoch seconds at which the frame was due to be sent


def write_stamp(image: np.ndarray, index: int, send_time: float) -> None:
    """Paint frame ``index`` and ``send_time`` as black/white blocks across the top rows."""
    block = stamp_block(image.shape[1])
    time_ms = int(round(send_time * 1000)) & 0xFFFFFFFF
    for row, value in enumerate((index & 0xFFFFFFFF, time_ms, _check(index, time_ms))):
        bits = (value >> np.arange(STAMP_BITS - 1, -1, -1)) & 1
        strip = np.repeat(bits.astype(np.uint8) * 255, block)
        image[row * block : (row + 1) * block, : strip.size, :] = strip[None, :, None]


def luma_plane(frame: av.VideoFrame) -> np.ndarray:
    """The luma of a decoded frame (the Y plane as is for yuv420p, converted otherwise)."""
    if frame.format.name == "yuv420p":
        return frame.to_ndarray()[: frame.height]
    return frame.to_ndarray(format="gray")


def read_stamp(luma: np.ndarray, now: float | None = None) -> Stamp | None:
    """Read a stamp from a decoded frame's luma plane; None if absent or corrupted."""
    block = stamp_block(luma.shape[1])
    if luma.shape[0] < STAMP_ROWS * block or luma.shape[1] < STAMP_BITS * block:
        return None
    inner = slice(block // 4, block - block // 4)
    values = []
    for row in range(STAMP_ROWS):
        band = luma[row * block : (row + 1) * block, : STAMP_BITS * block]
        cells = band.reshape(block, STAMP_BITS, block)[inner, :, inner]
        bits = cells.mean(axis=(0, 2)) > 128
        values.append(int("".join("1" if b else "0" for b in bits), 2))
    index, time_ms, check = values
    if check != _check(index, time_ms):
        return None
    now_ms = int((time.time() if now is None else now) * 1000)
    full_ms = now_ms - ((now_ms - time_ms) % (1 << 32))
    return Stamp(index=index, send_time=full_ms / 1000.0)


def is_flash_slot(index: int, fps: int) -> bool:
    """The first two frames of every second flash white; the tone starts with the first."""
    return index % fps < 2


class TestPatternProducer:
    """An :class:`~media.producer.AVProducer` that needs no model: for transport tests and benchmarks."""

    __test__ = False  # not a pytest class

    def __init__(self, clock: MediaClock, width: int = 512, height: int = 512) -> None:
        if width < STAMP_BITS * 4 or height < STAMP_ROWS * stamp_block(width) + 16:
            raise ValueError(f"test pattern needs at least {STAMP_BITS * 4}x64 pixels, got {width}x{height}")
        self.clock = clock
        self.width = width
        self.height = height
        x = np.arange(width)
        hue = (x * 6 // width) % 6
        palette = np.array(
            [[200, 40, 40], [200, 200, 40], [40, 200, 40], [40, 200, 200], [40, 40, 200], [200, 40, 200]],
            dtype=np.uint8,
        )
        self._bars = np.broadcast_to(palette[hue][None, :, :], (height, width, 3)).copy()
        self._burst = self._tone(int(BURST_S * AUDIO_RATE))

    @staticmethod
    def _tone(samples: int) -> np.ndarray:
        t = np.arange(samples) / AUDIO_RATE
        return (np.sin(2 * np.pi * TONE_HZ * t) * TONE_AMPLITUDE * 32767).astype(np.int16)

    def clear(self) -> None:
        """Nothing is queued in a test pattern."""

    async def produce(self, slot: FrameSlot) -> AVChunk:
        return self.render(slot)

    def render(self, slot: FrameSlot) -> AVChunk:
        image = np.roll(self._bars, shift=(slot.index * 4) % self.width, axis=1)
        top = STAMP_ROWS * stamp_block(self.width)
        flash = is_flash_slot(slot.index, slot.fps)
        if flash:
            image[top:] = 255
        else:
            row = top + (slot.index * 3) % (self.height - top - 8)
            image[row : row + 8] = 0  # a moving line, so motion is visible in any still
        write_stamp(image, slot.index, self.clock.wall_time(slot.pts_s))
        audio = np.zeros(slot.audio_samples, dtype=np.int16)
        into_second = slot.first_sample % AUDIO_RATE
        if into_second < self._burst.size:
            part = self._burst[into_second : into_second + slot.audio_samples]
            audio[: part.size] = part
        return AVChunk(slot=slot, video=image, audio=audio, speaking=flash, meta={"flash": flash})


class ToneOnsetDetector:
    """Finds tone-burst onsets in received audio: loud after at least ``quiet_s`` of near-silence."""

    def __init__(self, threshold: float = 0.15, quiet_s: float = 0.3) -> None:
        self.threshold = int(threshold * 32767)
        self.quiet_needed = int(quiet_s * AUDIO_RATE)
        self._quiet = 0

    def feed(self, samples: np.ndarray) -> int | None:
        """Offset in ``samples`` of a new onset, if one starts in this frame."""
        loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > self.threshold)
        if loud.size == 0:
            self._quiet += samples.size
            return None
        first = int(loud[0])
        onset = first if self._quiet + first >= self.quiet_needed else None
        self._quiet = samples.size - 1 - int(loud[-1])
        return onset
