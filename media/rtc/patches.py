"""Every adjustment this project makes to aioice and aiortc, installed once per process by :func:`install`.

Each patch replaces one library function and says why; what it does is configured elsewhere
(:func:`media.rtc.ice.pin_host_addresses`, :func:`media.rtc.codecs.set_x264_preset`) and read at call time, so
installing before or after configuring is the same. ``tests/test_rtc_patches.py`` proves each one is in effect.
"""

from __future__ import annotations

import fractions
from collections.abc import Callable, Iterator
from typing import Any

import aioice.ice
import av
from aiortc import RTCRtpReceiver
from aiortc.codecs import h264
from aiortc.jitterbuffer import JitterBuffer

from media.rtc import codecs, ice
from media.rtc.receive_tuning import (
    LowLatencyAudioJitterBuffer,
    MarkerVideoJitterBuffer,
    RetransmissionRtt,
    RetryingNackGenerator,
)

# the receiver's private (name-mangled) attributes the receive tuning replaces
BUFFER_ATTRIBUTE = "_RTCRtpReceiver__jitter_buffer"
NACK_ATTRIBUTE = "_RTCRtpReceiver__nack_generator"

_original_get_host_addresses: Callable[[bool, bool], list[str]] = aioice.ice.get_host_addresses
_original_encode_frame = h264.H264Encoder._encode_frame
_original_receiver_init = RTCRtpReceiver.__init__
_installed = False


def install() -> None:
    """Put every adjustment in place; calling it again changes nothing."""
    global _installed
    if _installed:
        return
    # aioice leaves 127.0.0.1 out of its host candidates, so two peers on a machine with no other usable
    # interface (CI, network namespaces) never connect: gather on the pinned addresses when some are pinned.
    aioice.ice.get_host_addresses = _host_addresses
    # aiortc opens libx264 with no preset (``medium``): about twice VP8's CPU here; open it with ours.
    h264.H264Encoder._encode_frame = _encode_frame_with_preset  # type: ignore[method-assign]
    # aiortc's jitter buffers add one packet period (audio) or one frame period (video) of latency and freeze
    # video for seconds on a lossy link: every receiver gets the low-latency buffers of media.rtc.receive_tuning.
    RTCRtpReceiver.__init__ = _receiver_init_with_tuned_buffers  # type: ignore[method-assign]
    _installed = True


def _host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    pinned = ice.pinned_addresses_of_family(use_ipv4, use_ipv6)
    return _original_get_host_addresses(use_ipv4, use_ipv6) if pinned is None else pinned


def _encode_frame_with_preset(self: Any, frame: av.VideoFrame, force_keyframe: bool) -> Iterator[bytes]:
    """aiortc's own ``_encode_frame``, with the encoder opened here first (same options plus the preset)."""
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
        codec.options = {"level": "31", "tune": "zerolatency", "preset": codecs.x264_preset()}
        codec.profile = "Baseline"
        self.codec = codec
    yield from _original_encode_frame(self, frame, force_keyframe)


def _receiver_init_with_tuned_buffers(self: RTCRtpReceiver, kind: str, transport: Any) -> None:
    _original_receiver_init(self, kind, transport)
    if not hasattr(self, BUFFER_ATTRIBUTE) or not hasattr(self, NACK_ATTRIBUTE):
        raise RuntimeError("this aiortc version has no receiver jitter buffer to tune; update media/rtc/patches.py")
    buffer: JitterBuffer
    if kind == "audio":
        buffer = LowLatencyAudioJitterBuffer()
    else:
        rtt = RetransmissionRtt()
        buffer = MarkerVideoJitterBuffer(rtt=rtt)
        setattr(self, NACK_ATTRIBUTE, RetryingNackGenerator(rtt))
    setattr(self, BUFFER_ATTRIBUTE, buffer)
