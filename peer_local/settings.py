"""Settings of ``avatar local``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from media.settings import PeerSettings


class LocalSettings(PeerSettings):
    """The laptop side: what it does with the avatar's audio and video."""

    record: Path | None = None
    codec: Literal["VP8", "H264"] | None = None
    answer_timeout_s: float = Field(10.0, gt=0)
    reconnect_min_s: float = Field(0.25, gt=0)
    reconnect_max_s: float = Field(5.0, gt=0)
