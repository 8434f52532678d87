"""The ASR interface: 16 kHz mono float32 audio of one turn in, text out (blocking; run it off the loop)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


class AsrError(RuntimeError):
    """The ASR model is missing or failed to load."""


@dataclass(frozen=True)
class AsrResult:
    text: str
    language: str | None


class Transcriber(Protocol):
    name: str

    def load(self) -> None:
        """Load the model (once, before the first turn)."""
        ...

    def transcribe(self, audio: np.ndarray) -> AsrResult: ...
