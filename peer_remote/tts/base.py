"""The TTS interface: text in, int16 mono audio blocks at the backend's own rate out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import numpy as np


class TtsError(RuntimeError):
    """The voice is missing, failed to load, or the TTS server answered with an error."""


class Synthesizer(Protocol):
    name: str
    sample_rate: int
    supports_voice_reference: bool  # True: ``with_reference`` clones a person's voice from a short clip

    async def load(self) -> None: ...

    def synthesize(self, text: str) -> AsyncIterator[np.ndarray]:
        """int16 mono blocks; closing the iterator stops synthesis."""
        ...

    def with_reference(self, clip: Path, transcript: Path) -> Synthesizer:
        """A synthesizer speaking in the voice of ``clip`` (its exact words in ``transcript``), sharing this one's
        model or server; TtsError if the clip is unusable or the backend speaks only its own voice."""
        ...

    async def close(self) -> None:
        """Release what it holds open (a server client's connections); not used afterwards."""
        ...
