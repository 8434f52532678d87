"""The TTS interface: text in, int16 mono audio blocks at the backend's own rate out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

import numpy as np


class TtsError(RuntimeError):
    """The voice is missing, failed to load, or the TTS server answered with an error."""


class Synthesizer(Protocol):
    name: str
    sample_rate: int

    async def load(self) -> None: ...

    def synthesize(self, text: str) -> AsyncIterator[np.ndarray]:
        """int16 mono blocks; closing the iterator stops synthesis."""
        ...
