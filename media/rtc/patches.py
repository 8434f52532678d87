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
import aiortc.rtcrtpsender
import av
from aiortc import RTCRtpCodecParameters, RTCRtpReceiver, RTCRtpSender
from aiortc.codecs import h264
from aiortc.codecs.base import Encoder
from aiortc.jitterbuffer import JitterBuffer
from av.frame import Frame

from media.rtc import codecs, ice
from media.rtc.capture_time import OPUS_LOOKAHEAD_S, capture_time_of, ntp_to_epoch_s, rtp_at
from media.rtc.receive_tuning import (
    LowLatencyAudioJitterBuffer,
    MarkerVideoJitterBuffer,
    RetransmissionRtt,
    RetryingNackGenerator,
)

# the receiver's private (name-mangled) attributes the receive tuning replaces
BUFFER_ATTRIBUTE = "_RTCRtpReceiver__jitter_buffer"
NACK_ATTRIBUTE = "_RTCRtpReceiver__nack_generator"
# the sender's private attributes: the RTP time its reports carry (set after each packet sent), and its encoder
REPORT_RTP_ATTRIBUTE = "_RTCRtpSender__rtp_timestamp"
SENDER_ENCODER_ATTRIBUTE = "_RTCRtpSender__encoder"

_original_get_host_addresses: Callable[[bool, bool], list[str]] = aioice.ice.get_host_addresses
_original_encode_frame = h264.H264Encoder._encode_frame
_original_receiver_init = RTCRtpReceiver.__init__
_original_get_encoder = aiortc.rtcrtpsender.get_encoder
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
    # aiortc's sender reports pair each RTP time with the moment its packet left, after encoding, so a receiver
    # that syncs audio and video by them (Chromium, OBS) plays the picture late by the encoder's time: every
    # encoder notes its frame's capture time, and the reports carry the RTP time of the report's own instant
    # derived from it (media.rtc.capture_time).
    aiortc.rtcrtpsender.get_encoder = _encoder_noting_capture_times
    setattr(RTCRtpSender, REPORT_RTP_ATTRIBUTE, property(_report_rtp, _note_sent_rtp))
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


def _encoder_noting_capture_times(codec: RTCRtpCodecParameters) -> Encoder:
    """aiortc's encoder for ``codec``; after each frame it encodes, ``avatar_captured`` holds (the capture time of
    the RTP time it returned, the clock rate), or None for a frame with no capture stamp."""
    encoder = _original_get_encoder(codec)
    encode = encoder.encode
    lead_s = OPUS_LOOKAHEAD_S if codec.mimeType.lower() == "audio/opus" else 0.0

    def encode_noting_capture_time(frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        payloads, timestamp = encode(frame, force_keyframe)
        captured = capture_time_of(frame)
        encoder.avatar_captured = None if captured is None else (captured - lead_s, codec.clockRate)  # type: ignore[attr-defined]
        return payloads, timestamp

    encoder.encode = encode_noting_capture_time  # type: ignore[method-assign]
    encoder.avatar_captured = None  # type: ignore[attr-defined]
    return encoder


def _note_sent_rtp(self: RTCRtpSender, rtp_timestamp: int) -> None:
    """Where aiortc stores the RTP time of the packet it just sent: kept with its frame's capture time (the
    sender encodes the next frame only after sending this one's packets, so the encoder's note is this frame's)."""
    encoder = self.__dict__.get(SENDER_ENCODER_ATTRIBUTE)
    self.__dict__["avatar_sent_rtp"] = (rtp_timestamp, getattr(encoder, "avatar_captured", None))


def _report_rtp(self: RTCRtpSender) -> int:
    """The RTP time a sender report carries with its NTP time (that of the last packet sent): from the capture
    time of that packet's frame when it is known, else aiortc's own pairing."""
    rtp_timestamp, captured = self.__dict__.get("avatar_sent_rtp", (0, None))
    if captured is None:
        return int(rtp_timestamp)
    captured_s, clock_rate = captured
    sent_s = ntp_to_epoch_s(self._RTCRtpSender__ntp_timestamp)  # type: ignore[attr-defined]
    return rtp_at(rtp_timestamp, captured_s, clock_rate, sent_s)
