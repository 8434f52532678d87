"""Video codec choice (VP8 default, H264 optional) and the x264 preset.

aiortc's H264 encoder opens libx264 with no preset (``medium``), which costs about twice the CPU of
VP8 here. ``set_x264_preset`` is the one place that adjusts it: the encoder is opened with our preset
the first time it encodes.
"""

from __future__ import annotations

import fractions
from collections.abc import Iterator
from typing import Any, Literal, get_args

import av
from aiortc import RTCRtpSender, RTCRtpTransceiver
from aiortc.codecs import h264

VIDEO_CODECS = ("VP8", "H264")
X264Preset = Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium"]
X264_PRESETS: tuple[str, ...] = get_args(X264Preset)

_original_encode_frame = h264.H264Encoder._encode_frame
_x264_preset = "veryfast"


def _encode_frame_with_preset(self: Any, frame: av.VideoFrame, force_keyframe: bool) -> Iterator[bytes]:
    codec = self.codec
    changed = codec is not None and (
        frame.width != codec.width
        or frame.height != codec.height
        or abs(self.target_bitrate - codec.bit_rate) / codec.bit_rate > 0.1
    )
    if codec is None or changed:
        self.buffer_data = b""
        self.buffer_pts = None
        codec = av.CodecContext.create("libx264", "w")
        codec.width = frame.width
        codec.height = frame.height
        codec.bit_rate = self.target_bitrate
        codec.pix_fmt = "yuv420p"
        codec.framerate = fractions.Fraction(h264.MAX_FRAME_RATE, 1)
        codec.time_base = fractions.Fraction(1, h264.MAX_FRAME_RATE)
        codec.options = {"level": "31", "tune": "zerolatency", "preset": _x264_preset}
        codec.profile = "Baseline"
        self.codec = codec
    yield from _original_encode_frame(self, frame, force_keyframe)


def set_x264_preset(preset: str) -> None:
    """Open every later H264 encoder with this x264 preset."""
    global _x264_preset
    if preset not in X264_PRESETS:
        raise ValueError(f"x264 preset must be one of {', '.join(X264_PRESETS)}")
    _x264_preset = preset
    h264.H264Encoder._encode_frame = _encode_frame_with_preset  # type: ignore[method-assign]


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
