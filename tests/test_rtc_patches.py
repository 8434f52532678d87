"""Guards media/rtc/patches.py: each aioice/aiortc adjustment is in effect once installed, and installing twice is
harmless (both peers of the demo install in one process)."""

from __future__ import annotations

import fractions
import re

import aioice
import aioice.ice
import av
import numpy as np
from aiortc import RTCPeerConnection, RTCRtpReceiver
from aiortc.codecs import h264

from media.rtc import patches
from media.rtc.codecs import set_x264_preset, x264_preset
from media.rtc.ice import pin_host_addresses, pinned_host_addresses
from media.rtc.receive_tuning import LowLatencyAudioJitterBuffer, MarkerVideoJitterBuffer, RetryingNackGenerator


def test_installing_twice_changes_nothing() -> None:
    patches.install()
    installed = (aioice.ice.get_host_addresses, h264.H264Encoder._encode_frame, RTCRtpReceiver.__init__)
    patches.install()
    assert (aioice.ice.get_host_addresses, h264.H264Encoder._encode_frame, RTCRtpReceiver.__init__) == installed
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
