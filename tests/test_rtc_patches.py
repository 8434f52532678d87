"""Guards media/rtc/patches.py: each aioice/aiortc adjustment is in effect once installed, and installing twice is
harmless (both peers of the demo install in one process)."""

from __future__ import annotations

import asyncio
import fractions
import re
import time
from typing import Any

import aioice
import aioice.ice
import aiortc.rtcrtpsender
import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpReceiver
from aiortc.codecs import h264
from aiortc.rtp import RtcpSrPacket

from media.rtc import patches
from media.rtc.capture_time import OPUS_LOOKAHEAD_S, ntp_to_epoch_s, stamp_capture_time
from media.rtc.codecs import set_x264_preset, x264_preset
from media.rtc.ice import pin_host_addresses, pinned_host_addresses
from media.rtc.receive_tuning import LowLatencyAudioJitterBuffer, MarkerVideoJitterBuffer, RetryingNackGenerator


def test_installing_twice_changes_nothing() -> None:
    patches.install()
    installed = (aioice.ice.get_host_addresses, h264.H264Encoder._encode_frame, RTCRtpReceiver.__init__)
    report_rtp = getattr(aiortc.rtcrtpsender.RTCRtpSender, patches.REPORT_RTP_ATTRIBUTE)
    patches.install()
    assert (aioice.ice.get_host_addresses, h264.H264Encoder._encode_frame, RTCRtpReceiver.__init__) == installed
    assert getattr(aiortc.rtcrtpsender.RTCRtpSender, patches.REPORT_RTP_ATTRIBUTE) is report_rtp
    assert aiortc.rtcrtpsender.get_encoder is not patches._original_get_encoder
    assert installed[0] is not patches._original_get_host_addresses
    assert installed[2] is not patches._original_receiver_init


def test_pinned_loopback_is_gathered_as_the_only_host_candidate() -> None:
    patches.install()
    pinned = pinned_host_addresses()
    try:
        pin_host_addresses(None)
        assert "127.0.0.1" not in aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)
        pin_host_addresses(["127.0.0.1"])
        assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True) == ["127.0.0.1"]
    finally:
        pin_host_addresses(pinned)


async def test_an_ice_connection_gathers_on_the_pinned_address() -> None:
    patches.install()
    pinned = pinned_host_addresses()
    connection = aioice.Connection(ice_controlling=True, components=1)
    try:
        pin_host_addresses(["127.0.0.1"])
        await connection.gather_candidates()
        assert {candidate.host for candidate in connection.local_candidates} == {"127.0.0.1"}
    finally:
        await connection.close()
        pin_host_addresses(pinned)


def x264_subme(preset: str) -> bytes:
    """The ``subme=`` x264 writes into its first key frame's settings SEI, encoding with ``preset`` chosen."""
    frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), dtype=np.uint8), format="rgb24")
    frame.pts, frame.time_base = 0, fractions.Fraction(1, 90000)
    set_x264_preset(preset)
    packets, _ = h264.H264Encoder().encode(frame)
    found = re.search(rb"subme=(\d+)", b"".join(packets))
    assert found, "no x264 settings SEI in the first key frame"
    return found.group(1)


def test_h264_encoders_open_with_the_chosen_x264_preset() -> None:
    patches.install()
    chosen = x264_preset()
    try:
        # x264's presets set subme: ultrafast 0, veryfast 2, medium (aiortc's stock encoder) 7
        assert x264_subme("ultrafast") == b"0"
        assert x264_subme("veryfast") == b"2"
    finally:
        set_x264_preset(chosen)


async def test_every_receiver_gets_the_low_latency_buffers() -> None:
    patches.install()
    pc = RTCPeerConnection()
    try:
        audio = pc.addTransceiver("audio", direction="recvonly").receiver
        video = pc.addTransceiver("video", direction="recvonly").receiver
        assert isinstance(getattr(audio, patches.BUFFER_ATTRIBUTE), LowLatencyAudioJitterBuffer)
        assert isinstance(getattr(video, patches.BUFFER_ATTRIBUTE), MarkerVideoJitterBuffer)
        assert isinstance(getattr(video, patches.NACK_ATTRIBUTE), RetryingNackGenerator)
    finally:
        await pc.close()


CAPTURED_BEFORE_S = 0.1  # each frame reaches the sender this long after its capture (a slow renderer, say)


class LateStampedTrack(MediaStreamTrack):
    """Frames paced in real time, frame k due at ``start + k * period`` and stamped as captured 100 ms before
    that (its RTP time is k steps after the stream's first)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.period_s = 0.04 if kind == "video" else 0.02
        self.step = 3600 if kind == "video" else 960
        self.first_capture = time.time() - CAPTURED_BEFORE_S
        self._index = 0

    async def recv(self) -> av.frame.Frame:  # type: ignore[override]
        index, self._index = self._index, self._index + 1
        due = self.first_capture + CAPTURED_BEFORE_S + index * self.period_s
        await asyncio.sleep(max(0.0, due - time.time()))  # pacing, not a wait for something
        frame: av.frame.Frame
        if self.kind == "video":
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 128, dtype=np.uint8), format="rgb24")
            frame.time_base = fractions.Fraction(1, 90000)
        else:
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 960), dtype=np.int16), format="s16", layout="mono")
            frame.sample_rate = 48000
            frame.time_base = fractions.Fraction(1, 48000)
        frame.pts = index * self.step
        stamp_capture_time(frame, self.first_capture + index * self.period_s)
        return frame


async def test_sender_reports_map_rtp_time_to_the_capture_time(monkeypatch: Any) -> None:
    """A receiver reading the sender reports (as Chromium does to sync audio and video) finds each RTP time at
    its capture time, not 100 ms or more later when the frame was encoded and sent (aiortc's own pairing)."""
    patches.install()
    first_rtp: dict[int, int] = {}
    reports: dict[int, list[RtcpSrPacket]] = {}
    enough = asyncio.Event()  # two reports of each stream
    handle_rtp, handle_rtcp = RTCRtpReceiver._handle_rtp_packet, RTCRtpReceiver._handle_rtcp_packet

    async def noting_rtp(self: RTCRtpReceiver, packet: Any, arrival_time_ms: int) -> None:
        first_rtp.setdefault(packet.ssrc, packet.timestamp)
        await handle_rtp(self, packet, arrival_time_ms)

    async def noting_rtcp(self: RTCRtpReceiver, packet: Any) -> None:
        if isinstance(packet, RtcpSrPacket):
            reports.setdefault(packet.ssrc, []).append(packet)
            if len(reports) == 2 and all(len(noted) >= 2 for noted in reports.values()):
                enough.set()
        await handle_rtcp(self, packet)

    monkeypatch.setattr(RTCRtpReceiver, "_handle_rtp_packet", noting_rtp)
    monkeypatch.setattr(RTCRtpReceiver, "_handle_rtcp_packet", noting_rtcp)
    pinned = pinned_host_addresses()
    pin_host_addresses(["127.0.0.1"])
    sender, receiver = RTCPeerConnection(), RTCPeerConnection()
    tracks = {kind: LateStampedTrack(kind) for kind in ("video", "audio")}
    try:
        ssrcs = {kind: sender.addTrack(track)._ssrc for kind, track in tracks.items()}
        await sender.setLocalDescription(await sender.createOffer())
        await receiver.setRemoteDescription(sender.localDescription)
        await receiver.setLocalDescription(await receiver.createAnswer())
        await sender.setRemoteDescription(receiver.localDescription)
        async with asyncio.timeout(20):
            await enough.wait()
    finally:
        await sender.close()
        await receiver.close()
        pin_host_addresses(pinned)
    for kind, track in tracks.items():
        rate = 90000 if kind == "video" else 48000
        lead = OPUS_LOOKAHEAD_S if kind == "audio" else 0.0  # the decoded audio lags the input by Opus's look-ahead
        for report in reports[ssrcs[kind]]:
            elapsed = ((report.sender_info.rtp_timestamp - first_rtp[ssrcs[kind]]) & 0xFFFFFFFF) / rate
            error = ntp_to_epoch_s(report.sender_info.ntp_timestamp) - (track.first_capture + elapsed - lead)
            assert abs(error) < 0.002, (kind, error)
