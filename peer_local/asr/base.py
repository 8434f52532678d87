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
    no_speech_prob: float | None = None  # the highest over the turn's segments (None: the backend cannot tell)
    avg_logprob: float | None = None  # the segments' mean, weighted by their length in tokens


class Transcriber(Protocol):
    name: str

    def load(self) -> None:
        """Load the model (once, before the first turn)."""
        ...

    def transcribe(self, audio: np.ndarray) -> AsrResult: ...
