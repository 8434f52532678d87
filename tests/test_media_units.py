"""Media building blocks without a network: clock-paced tracks, scheduler, test pattern, buffers, protocol."""

from __future__ import annotations

import asyncio
import fractions

import av
import numpy as np
import pytest
from aiortc.rtp import RtpPacket

from media.audio import LeadingQuietTrimmer
from media.clock import MediaClock
from media.fanout import TrackFanout
from media.frames import AUDIO_FRAME_SAMPLES, AVChunk, FrameSlot
from media.protocol import Interrupt, ProtocolError, Transcript, encode_message, parse_message
from media.rtc.ice import parse_ice_server
from media.rtc.receive_tuning import LowLatencyAudioJitterBuffer, MarkerVideoJitterBuffer
from media.stream import AVStream
from media.test_pattern import TestPatternProducer, ToneOnsetDetector, read_stamp, write_stamp


class SpeakingProducer:
    """Speaks (a loud constant signal, white frames) until cleared, then idles (silence, black)."""

    width, height = 128, 64

    def __init__(self) -> None:
        self.speaking = True
        self.cleared = 0

    def clear(self) -> None:
        self.speaking = False
        self.cleared += 1

    async def produce(self, slot: FrameSlot) -> AVChunk:
        level = 10_000 if self.speaking else 0
        video = np.full((self.height, self.width, 3), 255 if self.speaking else 0, dtype=np.uint8)
        return AVChunk(slot, video, np.full(slot.audio_samples, level, dtype=np.int16), speaking=self.speaking)


class SlowProducer(SpeakingProducer):
    """Takes longer than a frame period for every slot: the tracks must not wait for it."""

    async def produce(self, slot: FrameSlot) -> AVChunk:
        await asyncio.sleep(0.2)
        return await super().produce(slot)


async def test_tracks_are_paced_by_one_clock_with_exact_pts() -> None:
    clock = MediaClock()
    stream = AVStream(TestPatternProducer(clock, 256, 128), clock, fps=25)
    stream.start()
    try:
        video_pts = [(await stream.video.recv()).pts for _ in range(10)]
        audio = [await stream.audio.recv() for _ in range(10)]
    finally:
        await stream.stop()
    assert np.all(np.diff(video_pts) == 3600)  # 90 kHz / 25 fps
    assert np.all(np.diff([f.pts for f in audio]) == AUDIO_FRAME_SAMPLES)
    assert all(f.sample_rate == 48_000 and f.samples == AUDIO_FRAME_SAMPLES for f in audio)
    # each frame is released at its due time on the clock, never ahead of it
    assert clock.now() >= video_pts[-1] / 90_000


async def test_tracks_keep_going_with_idle_content_when_the_producer_is_late() -> None:
    clock = MediaClock()
    stream = AVStream(SlowProducer(), clock, fps=25)
    stream.start()
    try:
        async with asyncio.timeout(2.0):
            frames = [await stream.video.recv() for _ in range(10)]
            audio = [await stream.audio.recv() for _ in range(5)]
    finally:
        await stream.stop()
    assert len(frames) == 10 and np.all(np.diff([f.pts for f in frames]) == 3600)
    assert stream.scheduler.stats.missed_video > 0
    assert any(not np.any(a.to_ndarray()) for a in audio)  # silence fills what was not ready


async def test_clear_flushes_speech_within_one_frame() -> None:
    clock = MediaClock()
    producer = SpeakingProducer()
    stream = AVStream(producer, clock, fps=25)
    stream.start()
    try:
        for _ in range(6):
            frame = await stream.audio.recv()
        assert np.abs(frame.to_ndarray()).max() > 5_000
        stream.interrupt()
        cleared_at = clock.now()
        after = [await stream.audio.recv() for _ in range(4)]
        video = [await stream.video.recv() for _ in range(3)]
    finally:
        await stream.stop()
    late = [f for f in after if f.pts / 48_000 >= cleared_at + 0.04]
    assert late and all(np.abs(f.to_ndarray()).max() == 0 for f in late)
    assert video[-1].to_ndarray(format="rgb24").max() == 0
    assert producer.cleared == 1


def test_stamp_survives_a_real_vp8_encode_and_decode() -> None:
    clock = MediaClock()
    producer = TestPatternProducer(clock, 512, 512)
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 512, 512, "yuv420p"
    encoder.time_base = fractions.Fraction(1, 25)
    encoder.bit_rate = 500_000
    decoder = av.CodecContext.create("vp8", "r")
    stamps = []
    for index in range(30):
        chunk = producer.render(FrameSlot(index, 25))
        frame = av.VideoFrame.from_ndarray(chunk.video, format="rgb24").reformat(format="yuv420p")
        frame.pts = index
        for packet in encoder.encode(frame):
            for decoded in decoder.decode(packet):
                stamps.append(read_stamp(decoded.to_ndarray()[:512]))
    assert stamps and all(s is not None for s in stamps)
    indices = [s.index for s in stamps if s]
    assert indices == sorted(indices) and indices[0] == 0
    assert abs(stamps[0].send_time - clock.wall_time(0.0)) < 0.002  # type: ignore[union-attr]


def test_corrupted_stamp_is_rejected() -> None:
    image = np.zeros((64, 256, 3), dtype=np.uint8)
    write_stamp(image, 1234, 1_700_000_000.5)
    luma = image[:, :, 0].copy()
    assert read_stamp(luma, now=1_700_000_001.0) is not None
    luma[0:8, 0:8] = 255 - luma[0:8, 0:8]  # flip one bit of the frame number
    assert read_stamp(luma, now=1_700_000_001.0) is None


def test_test_pattern_flashes_and_beeps_together_every_second() -> None:
    producer = TestPatternProducer(MediaClock(), 256, 128)
    first = producer.render(FrameSlot(25, 25))
    middle = producer.render(FrameSlot(37, 25))
    assert first.video[64:].min() == 255 and np.abs(first.audio).max() > 10_000
    assert middle.video[64:].min() < 255 and np.abs(middle.audio).max() == 0
    detector = ToneOnsetDetector()
    onsets = [detector.feed(producer.render(FrameSlot(i, 25)).audio) for i in range(60)]
    assert [i for i, onset in enumerate(onsets) if onset is not None] == [25, 50]


def _packet(seq: int, timestamp: int, marker: int = 0) -> RtpPacket:
    packet = RtpPacket(payload_type=96, sequence_number=seq, timestamp=timestamp, marker=marker)
    packet._data = bytes([seq & 0xFF])  # type: ignore[attr-defined]
    return packet


def test_audio_buffer_releases_each_packet_at_once_and_skips_lost_ones() -> None:
    buffer = LowLatencyAudioJitterBuffer(reorder_window=2)
    released = [buffer.add(_packet(seq, seq * 960))[1] for seq in range(100, 104)]
    assert [f.data for f in released if f] == [bytes([s]) for s in range(100, 104)]
    # 104 is lost: 105 and 106 wait for it, 107 proves it is gone
    assert buffer.add(_packet(105, 105 * 960))[1] is None
    assert buffer.add(_packet(106, 106 * 960))[1] is None
    frame = buffer.add(_packet(107, 107 * 960))[1]
    assert frame is not None and frame.data == bytes([107]) and buffer.skipped == 1
    # reordered by one: the newer one is held, then the newest ready frame goes out
    assert buffer.add(_packet(109, 109 * 960))[1] is None
    assert buffer.add(_packet(108, 108 * 960))[1].data == bytes([109])  # type: ignore[union-attr]


def test_video_buffer_releases_a_frame_on_its_marker_packet() -> None:
    buffer = MarkerVideoJitterBuffer()
    assert buffer.add(_packet(10, 3000))[1] is None
    assert buffer.add(_packet(11, 3000))[1] is None
    frame = buffer.add(_packet(12, 3000, marker=1))[1]
    assert frame is not None and frame.data == bytes([10, 11, 12]) and frame.timestamp == 3000
    assert buffer.add(_packet(13, 6600, marker=1))[1].data == bytes([13])  # type: ignore[union-attr]


async def test_fanout_bounds_a_slow_subscriber_and_drops_its_oldest_frames() -> None:
    clock = MediaClock()
    stream = AVStream(TestPatternProducer(clock, 256, 128), clock, fps=25)
    stream.start()
    fanout = TrackFanout(stream.video, max_queue=3)
    fast, slow = fanout.subscribe(), fanout.subscribe()
    try:
        frames = [await fast.recv() for _ in range(8)]
        first_slow = await slow.recv()
    finally:
        await fanout.close()
        await stream.stop()
    assert slow.dropped >= 4
    assert first_slow.pts >= frames[-1].pts - 3 * 3600  # never more than 3 frames stale


def test_ice_server_specs_parse_with_credentials() -> None:
    turn = parse_ice_server("turn://user%40x:p%3Ass@relay.example:3478?transport=tcp")
    assert turn.urls == "turn:relay.example:3478?transport=tcp"
    assert (turn.username, turn.credential) == ("user@x", "p:ss")
    assert parse_ice_server("stun:127.0.0.1:3478").urls == "stun:127.0.0.1:3478"
    with pytest.raises(ValueError, match="bad ICE server"):
        parse_ice_server("http://example")


@pytest.mark.parametrize(
    "raw,code",
    [
        ("nope", "bad-json"),
        ('"text"', "bad-message"),
        ('{"type": "dance"}', "unknown-type"),
        ('{"type": "transcript", "text": "hi"}', "bad-message"),
        ('{"v": 9, "type": "ping", "id": 1, "t": 0}', "bad-version"),
        ('{"type": "transcript", "turn_id": "t", "text": "' + "x" * 70_000 + '"}', "too-large"),
    ],
)
def test_protocol_rejects_bad_messages_with_a_code(raw: str, code: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_message(raw)
    assert caught.value.code == code


def test_protocol_round_trips_and_ignores_unknown_fields() -> None:
    message = Transcript(turn_id="t1", text="hello", language="en")
    assert parse_message(encode_message(message)) == message
    assert parse_message('{"type": "interrupt", "future_field": 1}') == Interrupt()


def test_an_answer_starts_at_its_first_audible_sample_with_a_short_lead_in() -> None:
    trimmer = LeadingQuietTrimmer(rate=1000, level=150, keep_s=0.005)
    quiet = np.full(40, 20, np.int16)
    assert trimmer.feed(quiet).size == 0  # a block of near-silence is dropped whole
    block = np.concatenate([np.full(30, -40, np.int16), np.full(10, 3000, np.int16), np.zeros(5, np.int16)])
    out = trimmer.feed(block)
    assert out.size == 20 and out[4] == -40 and out[5] == 3000  # 5 samples of lead-in kept
    assert trimmer.dropped == 40 + 25
    later = np.zeros(10, np.int16)
    assert trimmer.feed(later) is later  # after the first sound, everything passes (pauses included)
