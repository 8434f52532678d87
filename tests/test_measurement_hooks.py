"""Guards issue 18's rule that measurement hooks live with the benchmarks, not in production settings: no
``bench_*`` setting or flag, and the e2e benchmark's frame stamping attaches from outside the avatar."""

from __future__ import annotations

import av
import numpy as np
import pytest

from avatar.demo import DemoSettings
from avatar.main import main
from media.clock import MediaClock
from media.frames import AVChunk, FrameSlot
from media.stamping import StampingProducer, read_speaking
from peer_local.settings import LocalSettings
from peer_remote.service import RemotePeer
from peer_remote.settings import RemoteSettings
from signaling.settings import SignalingSettings


def test_no_production_setting_is_a_benchmark_hook() -> None:
    for settings in (RemoteSettings, DemoSettings, LocalSettings, SignalingSettings):
        assert not [name for name in settings.model_fields if name.startswith("bench")], settings.__name__


def test_the_demo_has_no_benchmark_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--bench-stamp"])
    assert exit_info.value.code == 2 and "--bench-stamp" in capsys.readouterr().err


class ToneProducer:
    """Speaks a loud tone over a grey picture in every slot (the avatar's voice, without models)."""

    width = 256
    height = 256

    async def produce(self, slot: FrameSlot) -> AVChunk:
        audio = np.full(slot.audio_samples, 8_000, dtype=np.int16)
        video = np.full((self.height, self.width, 3), 128, dtype=np.uint8)
        return AVChunk(slot=slot, video=video, audio=audio, speaking=True)

    def clear(self) -> None:
        return None


async def test_a_benchmark_stamps_what_the_avatar_streams_by_wrapping_its_producer() -> None:
    settings = RemoteSettings.load({"source": "test-pattern", "width": 256, "height": 256})
    plain = RemotePeer(settings, producer=ToneProducer())
    stamped = RemotePeer(settings, producer=ToneProducer(), wrap_producer=StampingProducer)

    def speaking_stamp(chunk: AVChunk) -> bool | None:
        luma = av.VideoFrame.from_ndarray(chunk.video, format="rgb24").to_ndarray(format="gray")
        return read_speaking(luma, now=MediaClock().wall_time(chunk.slot.pts_s))

    slot = FrameSlot(index=7, fps=25)
    assert speaking_stamp(await plain.stream.producer.produce(slot)) is None  # a meeting's frames carry no stamp
    assert speaking_stamp(await stamped.stream.producer.produce(slot)) is True
