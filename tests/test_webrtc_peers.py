"""Real aiortc peers through the real signaling server on 127.0.0.1: media, data channel, reconnects."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from media.protocol import Error, Transcript
from peer_local.sinks import RecorderSink
from peer_remote.service import RemotePeer
from peer_remote.settings import RemoteSettings
from signaling.messages import Role
from signaling.server import SignalingService
from tests.collecting_sink import CollectingSink
from tests.peer_helpers import local_peer, peer_fields, running, start_test_pattern_remote

pytestmark = pytest.mark.slow


async def test_local_decodes_video_of_the_configured_size_with_increasing_pts_and_gapless_audio(
    signaling: SignalingService, token: str, remote: RemotePeer
) -> None:
    sink = CollectingSink()
    local = local_peer(signaling, token, sink)
    async with running(local.run):
        await sink.wait_until(lambda s: len(s.video_pts) >= 50 and len(s.audio_pts) >= 100)
    assert set(sink.video_sizes) == {(320, 240)}
    assert all(b > a for a, b in zip(sink.video_pts, sink.video_pts[1:], strict=False))
    # each frame shows a newer picture than the last, except where the sender had none ready in time and sent the
    # last one again (a stall of the loaded machine: counted as missed); skips after a stall are allowed
    index_steps = np.diff(sink.stamp_indices)
    assert np.all(index_steps >= 0)
    assert np.count_nonzero(index_steps == 0) <= remote.stream.scheduler.stats.missed_video
    # audio: every 20 ms frame follows the previous one exactly (no gaps, no overlaps)
    steps = np.diff(sink.audio_pts)
    assert np.all(steps == np.array(sink.audio_samples[:-1]))
    assert max(sink.audio_peaks) > 10_000  # the tone bursts came through
    assert sink.connections[0] is True


async def test_datachannel_ping_round_trips_and_transcripts_reach_the_remote(
    signaling: SignalingService, token: str, remote: RemotePeer
) -> None:
    sink = CollectingSink()
    local = local_peer(signaling, token, sink)
    async with running(local.run):
        async with asyncio.timeout(10):
            session = await local.wait_session()
            await session.channel_open.wait()
        rtt = await session.endpoint.ping(timeout_s=5)
        assert 0 < rtt < 5000
        assert local.send(Transcript(turn_id="t1", text="hello avatar"))
        async with asyncio.timeout(10):
            await remote.avatar.transcript_arrived.wait()
    assert remote.avatar.transcripts[0].text == "hello avatar"


async def test_malformed_datachannel_messages_get_error_replies(
    signaling: SignalingService, token: str, remote: RemotePeer
) -> None:
    errors: asyncio.Queue[Error] = asyncio.Queue()
    sink = CollectingSink()
    local = local_peer(signaling, token, sink)
    local.message_received.connect(lambda m: errors.put_nowait(m) if isinstance(m, Error) else None)
    async with running(local.run):
        async with asyncio.timeout(10):
            session = await local.wait_session()
            await session.channel_open.wait()
        channel = session.endpoint.channel
        channel.send("{broken")
        channel.send(json.dumps({"type": "transcript"}))
        channel.send(json.dumps({"type": "karaoke"}))
        channel.send("x" * 70_000)
        async with asyncio.timeout(10):
            codes = [(await errors.get()).code for _ in range(4)]
        # the remote still serves: a ping round-trips afterwards
        assert await session.endpoint.ping(timeout_s=5) > 0
    assert codes == ["bad-json", "bad-message", "unknown-type", "too-large"]


async def test_viewer_and_local_receive_the_same_stream_at_once(
    signaling: SignalingService, token: str, remote: RemotePeer
) -> None:
    local_sink, viewer_sink = CollectingSink(), CollectingSink()
    local = local_peer(signaling, token, local_sink)
    viewer = local_peer(signaling, token, viewer_sink, role=Role.VIEWER)
    async with running(local.run), running(viewer.run):
        await local_sink.wait_until(lambda s: len(s.stamp_indices) >= 25)
        await viewer_sink.wait_until(lambda s: len(s.stamp_indices) >= 25)
        common = set(local_sink.stamp_indices) & set(viewer_sink.stamp_indices)
        assert len(remote.sessions) == 2
        assert {s.role for s in remote.sessions.values()} == {Role.LOCAL, Role.VIEWER}
    assert len(common) >= 10  # the same frames (one render) reached both
    assert remote.stream.scheduler.stats.produced < 3 * max(local_sink.stamp_indices)


async def test_local_reconnects_after_the_remote_is_killed_and_restarted(
    signaling: SignalingService, token: str, tmp_path: Path
) -> None:
    sink = CollectingSink()
    local = local_peer(signaling, token, sink)
    remote = await start_test_pattern_remote(signaling, token, tmp_path / "remote1.log")
    try:
        async with running(local.run):
            await sink.wait_until(lambda s: len(s.stamp_indices) >= 10, timeout_s=30)
            remote.kill()  # kill -9: no goodbye
            await remote.wait()
            await sink.wait_until(lambda s: s.connections[-1] is False, timeout_s=10)
            assert local.session is None
            before = len(sink.stamp_indices)
            remote = await start_test_pattern_remote(signaling, token, tmp_path / "remote2.log")
            await sink.wait_until(lambda s: len(s.stamp_indices) >= before + 10, timeout_s=30)
            assert local.sessions_started == 2
    finally:
        remote.kill()
        await remote.wait()


async def test_remote_streams_h264_when_configured(signaling: SignalingService, token: str) -> None:
    peer = RemotePeer(
        RemoteSettings.load({**peer_fields(signaling, token), "width": 320, "height": 240, "codec": "H264"})
    )
    sink = CollectingSink()
    local = local_peer(signaling, token, sink)
    async with running(peer.run):
        async with asyncio.timeout(10):
            await peer.connected.wait()
        async with running(local.run):
            await sink.wait_until(lambda s: len(s.stamp_indices) >= 10)
            assert local.session is not None
            sdp = local.session.pc.remoteDescription.sdp
    video_section = sdp[sdp.index("m=video") :]
    assert "H264/90000" in video_section and "VP8/90000" not in video_section


async def test_recorder_sink_writes_an_mp4_with_audio_and_video(
    signaling: SignalingService, token: str, remote: RemotePeer, tmp_path: Path
) -> None:
    path = tmp_path / "out.mp4"
    recorder = RecorderSink(path, fps=25)
    sink = CollectingSink()
    local = local_peer(signaling, token, sink)
    local.sinks.append(recorder)
    async with running(local.run):
        await sink.wait_until(lambda s: len(s.video_pts) >= 50)
    await recorder.close()
    with av.open(str(path)) as container:
        kinds = {s.type for s in container.streams}
        video = container.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height) == (320, 240)
        frames = sum(1 for _ in container.decode(video=0))
    assert kinds == {"audio", "video"}
    assert frames >= 45


async def test_wrong_token_is_a_clear_error_for_a_peer(signaling: SignalingService) -> None:
    from signaling.client import SignalingAuthError

    local = local_peer(signaling, "wrong-token", CollectingSink())
    with pytest.raises(SignalingAuthError, match="refused the token"):
        async with asyncio.timeout(10):
            await local.run(asyncio.Event())


def test_python_is_311() -> None:
    assert sys.version_info[:2] == (3, 11)
