"""Settings of ``avatar remote``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from media.codecs import X264Preset
from media.settings import PeerSettings


class RemoteSettings(PeerSettings):
    """The avatar side: what it streams and how."""

    source: Literal["test-pattern"] = "test-pattern"
    width: int = Field(512, ge=128, le=1920)
    height: int = Field(512, ge=64, le=1080)
    fps: int = Field(25, ge=1, le=60)
    codec: Literal["VP8", "H264"] = "VP8"
    x264_preset: X264Preset = "veryfast"
    lookahead_s: float = Field(0.2, gt=0, le=2.0)
    max_subscribers: int = Field(8, ge=1)
