"""The unit the A/V producer hands out: one video frame and the audio that belongs to it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

AUDIO_RATE = 48_000
AUDIO_FRAME_MS = 20
AUDIO_FRAME_SAMPLES = AUDIO_RATE * AUDIO_FRAME_MS // 1000


@dataclass(frozen=True)
class FrameSlot:
    """A video frame period on the media clock: slot ``index`` covers ``[pts_s, pts_s + 1/fps)``."""

    index: int
    fps: int

    @property
    def pts_s(self) -> float:
        return self.index / self.fps

    @property
    def audio_samples(self) -> int:
        """Samples of 48 kHz audio that belong to one slot (fps must divide 48000)."""
        return AUDIO_RATE // self.fps

    @property
    def first_sample(self) -> int:
        return self.index * self.audio_samples


@dataclass(frozen=True)
class AVChunk:
    """One slot's content: an RGB frame (H, W, 3) uint8 and its mono int16 48 kHz audio."""

    slot: FrameSlot
    video: np.ndarray
    audio: np.ndarray
    speaking: bool = False
    meta: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.video.ndim != 3 or self.video.shape[2] != 3 or self.video.dtype != np.uint8:
            raise ValueError(f"video must be (H, W, 3) uint8, got {self.video.shape} {self.video.dtype}")
        if self.audio.shape != (self.slot.audio_samples,) or self.audio.dtype != np.int16:
            raise ValueError(
                f"audio must be ({self.slot.audio_samples},) int16 for {self.slot.fps} fps, "
                f"got {self.audio.shape} {self.audio.dtype}"
            )


def silence(samples: int) -> np.ndarray:
    return np.zeros(samples, dtype=np.int16)
