"""Bad networks: the userspace impairment bridge, the loss-tolerant receive path, and a call through both."""

from __future__ import annotations

import pytest
from aiortc.rtp import RtpPacket

from benchmarks.harness.impairment import Impairer, ImpairmentSpec
from benchmarks.harness.netns import ImpairedNetwork
from benchmarks.transport import TransportBenchConfig, run_transport_bench
from media.rtc.receive_tuning import MarkerVideoJitterBuffer, RetransmissionRtt, RetryingNackGenerator


class FakeClock:
    """A hand-driven clock for the buffers (no sleeping)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def packet(seq: int, timestamp: int, marker: bool = False) -> RtpPacket:
    p = RtpPacket(payload_type=96, sequence_number=seq, timestamp=timestamp, marker=marker)
    p._data = bytes([seq % 256])  # type: ignore[attr-defined]
    return p


def test_spec_parses_every_key_and_describes_itself() -> None:
    spec = ImpairmentSpec.parse("delay=50ms,jitter=5ms,loss=3%,reorder=1%,burst=300ms/10s")
    assert (spec.delay_s, spec.jitter_s, spec.loss, spec.reorder) == (0.05, 0.005, 0.03, 0.01)
    assert (spec.burst_s, spec.burst_every_s) == (0.3, 10.0)
    assert ImpairmentSpec.parse(spec.describe()) == spec
    for bad in ("delay=50", "loss=150%", "wobble=1ms"):
        with pytest.raises(ValueError):
            ImpairmentSpec.parse(bad)


def test_impairer_loses_delays_reorders_and_bursts_as_specified() -> None:
    spec = ImpairmentSpec.parse("delay=50ms,jitter=10ms,loss=3%,reorder=2%,burst=200ms/1s")
    impairer = Impairer(spec, seed=3, started=0.0)
    decisions = [impairer.delay_for(t * 0.001) for t in range(20_000)]  # one frame per ms for 20 s
    in_bursts = [d for t, d in enumerate(decisions) if t >= 1000 and (t % 1000) < 200]
    assert all(d is None for d in in_bursts) and len(impairer.stats.bursts) == 19
    outside = [d for t, d in enumerate(decisions) if not (t >= 1000 and (t % 1000) < 200)]
    lost = sum(d is None for d in outside) / len(outside)
    assert 0.02 < lost < 0.04  # 3 % within binomial bounds for ~16 000 frames
    kept = [d for d in outside if d is not None]
    plain = [d for d in kept if d <= 0.060 + 1e-9]
    assert min(plain) >= 0.040 - 1e-9 and max(plain) <= 0.060 + 1e-9  # delay +- jitter
    assert 0.01 < impairer.stats.reordered / len(kept) < 0.03


def test_video_buffer_waits_for_a_retransmission_inside_the_give_up_time() -> None:
    clock = FakeClock()
    buffer = MarkerVideoJitterBuffer(rtt=RetransmissionRtt(0.1), clock=clock)
    assert buffer.add(packet(1, 3000)) == (False, None)
    assert buffer.add(packet(3, 3000, marker=True)) == (False, None)  # seq 2 lost: hole
    clock.now += 0.1
    pli, frame = buffer.add(packet(2, 3000))  # the retransmission fills it
    assert not pli and frame is not None and frame.timestamp == 3000 and frame.data == bytes([1, 2, 3])
    assert buffer.skipped_frames == 0


def test_video_buffer_gives_up_a_hole_skips_to_the_next_frame_and_asks_for_a_key_frame() -> None:
    clock = FakeClock()
    rtt = RetransmissionRtt(0.1)
    buffer = MarkerVideoJitterBuffer(rtt=rtt, clock=clock)
    buffer.add(packet(10, 3000))  # frame A: 10, (11 lost), 12 marker
    buffer.add(packet(12, 3000, marker=True))
    buffer.add(packet(13, 6000))  # frame B complete behind the hole
    assert buffer.add(packet(14, 6000, marker=True)) == (False, None)
    clock.now += rtt.give_up_after_s + 0.001
    pli, frame = buffer.add(packet(15, 9000))
    assert frame is not None and frame.timestamp == 6000  # B decodes: no freeze past the give-up time
    assert buffer.skipped_frames == 1
    pli_next, _ = buffer.add(packet(16, 9000, marker=True))
    assert pli or pli_next  # a key frame is requested
    assert rtt.give_up_after_s <= 0.16


def test_nack_generator_repeats_unanswered_nacks_and_learns_the_rtt() -> None:
    clock = FakeClock()
    rtt = RetransmissionRtt(0.1)
    nacks = RetryingNackGenerator(rtt, max_retries=3, clock=clock)
    assert not nacks.add(packet(1, 0))
    assert nacks.add(packet(4, 0)) and nacks.missing == {2, 3}
    clock.now += 0.05
    assert not nacks.add(packet(5, 0))  # within one round trip: nothing repeated
    clock.now += 0.08
    assert nacks.add(packet(6, 0)) and nacks.missing == {2, 3}  # repeated once the retry time passed
    clock.now += 0.07
    nacks.add(packet(2, 0))  # retransmission of 2 arrives 70 ms after its last NACK
    assert rtt.samples == 1 and rtt.rtt_s == pytest.approx(0.07)
    for seq in range(7, 12):
        clock.now += 0.2
        nacks.add(packet(seq, 0))
    assert 3 not in nacks._pending  # given up after max_retries


@pytest.mark.slow
@pytest.mark.skipif(ImpairedNetwork.available() is not None, reason=f"{ImpairedNetwork.available()}")
async def test_a_call_through_loss_delay_and_bursts_keeps_flowing_and_recovers() -> None:
    """Peers in two namespaces behind the bridge: 50 ms each way, 3 % loss, a 400 ms blackout every 4 s."""
    config = TransportBenchConfig(width=320, height=240, duration_s=12, impair="delay=50ms,loss=3%,burst=400ms/4s")
    result = await run_transport_bench(config)
    assert "error" not in result, result
    bridge = result["bridge"]
    assert bridge["a_to_b"]["lost"] > 0 and bridge["a_to_b"]["burst_lost"] > 0  # the network really was bad
    assert result["video_fps"] > 15 and result["frames"] > 150  # video kept flowing through the bursts
    assert result["max_freeze_ms"] < 1000  # stock aiortc froze 1-4 s here; bursts are 400 ms
    series_end = result["audio_frame_latency_ms"]
    assert series_end["p50"] < 100  # audio latency did not get stuck high after the losses
    assert result["audio_recovery_s"] < 2.0
