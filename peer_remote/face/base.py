"""The face interface: prepared once from a photo, then one frame per slot for that slot's audio."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from media.frames import FrameSlot
from media.profile.face_geometry import FaceError

__all__ = ["FaceAnimator", "FaceError"]


class FaceAnimator(Protocol):
    name: str
    width: int
    height: int
    needs_speech_ahead: bool  # True: ``observe_speech`` gets each clause's audio before its frames are rendered

    def prepare(self) -> None:
        """Find the face and build what rendering needs (cached on disk by content hash)."""
        ...

    def render(self, slot: FrameSlot, audio: np.ndarray, speaking: bool) -> np.ndarray:
        """An RGB (H, W, 3) uint8 frame for ``slot``, lips moving with ``audio`` (its 48 kHz int16 samples);
        idle motion (blinks, small head and breathing movement) continues either way."""
        ...

    def reset_speech(self) -> None:
        """An interruption: close the mouth at once."""
        ...

    def observe_speech(self, samples: np.ndarray) -> None:
        """Speech's 48 kHz int16 audio before it is played (only called when ``needs_speech_ahead``)."""
        ...

    def with_portrait(self, image_path: Path | None) -> FaceAnimator:
        """A new animator of this kind and size for another photo, sharing the loaded models (one room's face
        never touches another's: each has its own prepared portrait); ``prepare`` it before use."""
        ...
