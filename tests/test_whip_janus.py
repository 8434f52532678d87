"""WHIP into a real SFU: the avatar publishes once to Debian's Janus (through its WHIP front, simple-whip-server)
and viewers watch through Janus, not through the avatar.

Guards: the avatar cannot feed an SFU; each SFU viewer costs the avatar an encode; an SFU restart loses the
audience for good.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import pytest

from avatar.main import main
from benchmarks.harness.janus import JanusSfu, JanusSubscriber, running_sfu, sfu_problem
from media.measure import TestPatternMeter
from media.rtc.ice import pin_host_addresses
from peer_remote.service import RemotePeer
from peer_remote.settings import RemoteSettings
from signaling.server import SignalingService
from tests.peer_helpers import peer_fields, running

FRAMES = 25  # a second of video, each frame's stamp read back


@pytest.fixture
async def sfu(tmp_path: Path) -> AsyncIterator[JanusSfu]:
    if shutil.which("janus") is None:
        pytest.skip("Debian's janus is not installed (.ci/run installs it)")
    problem = sfu_problem()
    assert problem is None, problem
    async with running_sfu(tmp_path / "sfu") as started:
        pin_host_addresses(["127.0.0.1", started.network.host_ip])  # Janus is reached over its veth pair
        try:
            yield started
        finally:
            pin_host_addresses(["127.0.0.1"])


@pytest.fixture
async def avatar(signaling: SignalingService, token: str, sfu: JanusSfu) -> AsyncIterator[RemotePeer]:
    fields = {
        **peer_fields(signaling, token),
        "ice_host_addresses": ["127.0.0.1", sfu.network.host_ip],
        "width": 320,
        "height": 240,
        "publish_whip": sfu.whip_url,
        "publish_token": sfu.endpoint_token,
    }
    peer = RemotePeer(RemoteSettings.load(fields))
    async with running(peer.run):
        yield peer


@dataclass
class Viewer:
    """What one SFU viewer decoded: the test pattern's stamps, read back frame by frame."""

    meter: TestPatternMeter = field(default_factory=TestPatternMeter)
    enough: asyncio.Event = field(default_factory=asyncio.Event)

    def on_video(self, frame: av.VideoFrame | av.AudioFrame, arrival: float) -> None:
        assert isinstance(frame, av.VideoFrame)
        self.meter.on_video(frame, arrival)
        if self.meter.frames >= FRAMES:
            self.enough.set()

    def on_audio(self, frame: av.VideoFrame | av.AudioFrame, arrival: float) -> None:
        assert isinstance(frame, av.AudioFrame)
        self.meter.on_audio(frame, arrival)


async def watch(sfu: JanusSfu, publisher: int, count: int) -> tuple[list[Viewer], list[JanusSubscriber]]:
    viewers = [Viewer() for _ in range(count)]
    subscribers = [JanusSubscriber(sfu.janus_url, publisher, v.on_video, v.on_audio) for v in viewers]
    for subscriber in subscribers:
        await subscriber.start()
    async with asyncio.timeout(30):
        await asyncio.gather(*(viewer.enough.wait() for viewer in viewers))
    return viewers, subscribers


@pytest.mark.slow
async def test_three_viewers_decode_the_avatar_through_janus_from_one_published_stream(
    sfu: JanusSfu, avatar: RemotePeer
) -> None:
    publisher = await sfu.publisher_id(timeout_s=30)
    viewers, subscribers = await watch(sfu, publisher, 3)
    try:
        for viewer in viewers:
            assert viewer.meter.frames >= FRAMES and viewer.meter.sizes == {(320, 240)}
            assert viewer.meter.audio_frames > 0
        # one encode for the whole audience: the WHIP session is the avatar's only peer connection
        assert avatar.stream.subscriber_count == 1 and not avatar.sessions
        assert avatar.publisher is not None and avatar.publisher.sessions_started == 1
    finally:
        for subscriber in subscribers:
            await subscriber.close()


@pytest.mark.slow
async def test_the_avatar_publishes_again_when_janus_restarts(sfu: JanusSfu, avatar: RemotePeer) -> None:
    assert avatar.publisher is not None
    await sfu.publisher_id(timeout_s=30)
    async with asyncio.timeout(30):
        await avatar.publisher.connected.wait()
    await sfu.stop_janus()
    await sfu.start_janus()  # a new Janus: the old publisher id means nothing there
    again = await sfu.publisher_id(timeout_s=60)  # the publisher's backoff is bounded (10 s at most)
    assert avatar.publisher.sessions_started >= 2
    viewers, subscribers = await watch(sfu, again, 1)
    try:
        assert viewers[0].meter.frames >= FRAMES
        assert avatar.stream.subscriber_count == 1  # the failed session's tracks were released
    finally:
        await subscribers[0].close()


def test_publish_whip_takes_an_http_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["remote", "--token", "t" * 32, "--publish-whip", "rtmp://sfu/live", "--publish-token", "k"]) == 2
    assert "publish_whip" in capsys.readouterr().err
