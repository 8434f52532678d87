"""Video codec choice (VP8 default, H264 optional) and the x264 preset.

aiortc's H264 encoder opens libx264 with no preset (``medium``), which costs about twice the CPU of
VP8 here. ``set_x264_preset`` chooses the preset; :mod:`media.rtc.patches` opens every H264 encoder with it.
"""

from __future__ import annotations

from typing import Literal, get_args

from aiortc import RTCRtpSender, RTCRtpTransceiver

VIDEO_CODECS = ("VP8", "H264")
X264Preset = Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium"]
X264_PRESETS: tuple[str, ...] = get_args(X264Preset)

_x264_preset = "veryfast"


def set_x264_preset(preset: str) -> None:
    """Open every later H264 encoder with this x264 preset."""
    global _x264_preset
    if preset not in X264_PRESETS:
        raise ValueError(f"x264 preset must be one of {', '.join(X264_PRESETS)}")
    _x264_preset = preset


def x264_preset() -> str:
    return _x264_preset


def prefer_video_codec(transceiver: RTCRtpTransceiver, codec_name: str) -> None:
    """Restrict a video transceiver to ``codec_name`` (plus its RTX)."""
    name = codec_name.upper()
    if name not in VIDEO_CODECS:
        raise ValueError(f"video codec must be one of {', '.join(VIDEO_CODECS)}")
    capabilities = RTCRtpSender.getCapabilities("video")
    chosen = [c for c in capabilities.codecs if c.mimeType.upper() == f"VIDEO/{name}"]
    rtx = [c for c in capabilities.codecs if c.mimeType.upper() == "VIDEO/RTX"]
    transceiver.setCodecPreferences(chosen + rtx)
