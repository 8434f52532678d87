"""The face interface: prepared once from a photo, then one frame per slot for that slot's audio."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from media.frames import FrameSlot
from media.profile.face_geometry import FaceError

__all__ = ["FaceAnimator", "FaceError"]


class FaceAnimator(Protocol):
    name: str
    width: int
    height: int

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
