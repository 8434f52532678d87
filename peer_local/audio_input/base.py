"""The audio-source interface: 16 kHz mono float32 chunks stamped with their capture time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

ASR_RATE = 16_000


class AudioInputError(RuntimeError):
    """An input that cannot be opened or read (missing or busy device, unreadable file)."""


@dataclass(frozen=True)
class AudioChunk:
    """Samples (float32 in [-1, 1], 16 kHz mono) whose first sample was captured at ``t_s``
    seconds on the source's clock (0 = the source's start)."""

    samples: np.ndarray
    t_s: float

    @property
    def end_s(self) -> float:
        return self.t_s + self.samples.size / ASR_RATE


class AudioSource(Protocol):
    """Yields audio until the input ends (files) or ``close`` is called (devices)."""

    name: str

    def chunks(self) -> AsyncIterator[AudioChunk]: ...

    async def close(self) -> None: ...
