"""Sender reports that map RTP time to when the media was captured, not to when its packet left.

A receiver that keeps audio and video in sync (Chromium, OBS, an SFU's viewers) lines the two streams up by the
RTCP sender reports: each pairs an NTP wall time with an RTP timestamp of that instant. aiortc pairs the RTP
timestamp of the last packet sent with the time it was sent (``RTCRtpSender._run_rtp``, aiortc 1.16), so a video
frame that spent 30 ms in its encoder reads as captured 30 ms later than the audio of the same instant, and
the receiver plays the picture late by that much. libwebrtc's senders pair the RTP time with the frame's capture
time instead (extrapolated to the report's time). Our tracks stamp each frame with its capture time
(:func:`stamp_capture_time`); :mod:`media.rtc.patches` makes aiortc's sender report from that stamp.
"""

from __future__ import annotations

from av.frame import Frame

NTP_UNIX_OFFSET_S = 2_208_988_800  # seconds from 1900-01-01 (NTP's epoch) to 1970-01-01

# libopus delays its output by its look-ahead: Fs/400 plus, outside the restricted-low-delay application,
# delay_compensation = Fs/250 (opus_encoder.c, OPUS_GET_LOOKAHEAD), so 312 samples at 48 kHz; PyAV shows it as
# the first packet's pts of -312 (aiortc's OpusEncoder cancels it out of the RTP time, "for some reason").
OPUS_LOOKAHEAD_S = 312 / 48_000


class CaptureTime(float):
    """Epoch seconds at which a frame's first sample or its picture was captured (due on the media clock)."""


def stamp_capture_time(frame: Frame, epoch_s: float) -> None:
    """Note on ``frame`` (PyAV's ``opaque``, which travels with the frame object) when it was captured."""
    frame.opaque = CaptureTime(epoch_s)


def capture_time_of(frame: Frame) -> float | None:
    """The stamp :func:`stamp_capture_time` left, or None for a frame from elsewhere."""
    stamp = frame.opaque
    return float(stamp) if isinstance(stamp, CaptureTime) else None


def ntp_to_epoch_s(ntp: int) -> float:
    """A 64-bit NTP timestamp (as aiortc's ``clock.current_ntp_time`` makes) in epoch seconds."""
    return (ntp >> 32) - NTP_UNIX_OFFSET_S + (ntp & 0xFFFFFFFF) / (1 << 32)


def rtp_at(sent_rtp: int, captured_s: float, clock_rate: int, at_epoch_s: float) -> int:
    """The RTP timestamp of the instant ``at_epoch_s``, for a packet of RTP time ``sent_rtp`` captured at
    ``captured_s``: what a sender report sent at that instant should carry."""
    return (sent_rtp + round((at_epoch_s - captured_s) * clock_rate)) & 0xFFFFFFFF
