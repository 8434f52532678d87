"""peer_local listens: real Silero VAD, real faster-whisper tiny.en, real generated speech."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from benchmarks.harness.speech import SENTENCES, conversation, espeak, read_wav, write_wav
from media.protocol import Turn
from peer_local.asr import FasterWhisperTranscriber
from peer_local.asr.wer import word_error_rate
from peer_local.audio_input import AudioInputError, open_audio_source
from peer_local.audio_input.base import AudioChunk
from peer_local.audio_input.devices import AudioDevice, resolve_input_device
from peer_local.audio_input.file_source import FileAudioSource
from peer_local.listener import Listener
from peer_local.service import LocalPeer
from peer_local.settings import LocalSettings
from peer_local.transcript_sender import TranscriptSender
from peer_local.turns import (
    EndOfTurnDetector,
    PauseDetected,
    SilenceStarted,
    SpeechConfirmed,
    SpeechDiscarded,
    SpeechResumed,
    SpeechStarted,
    TurnEnded,
    TurnSettings,
)
from peer_local.vad import VAD_CHUNK
from peer_remote.service import RemotePeer
from peer_remote.settings import RemoteSettings
from signaling.server import SignalingService
from tests.collecting_sink import CollectingSink


@pytest.fixture(scope="module")
def transcriber() -> FasterWhisperTranscriber:
    model = FasterWhisperTranscriber()
    model.load()
    return model


@pytest.fixture(scope="module")
def two_questions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return conversation(tmp_path_factory.mktemp("speech") / "two.wav", SENTENCES[:2])


async def listen(path: Path, transcriber: FasterWhisperTranscriber, **settings: float) -> Listener:
    listener = Listener(
        FileAudioSource(path, realtime=False),
        transcriber,
        turn_settings=TurnSettings(**settings),
    )
    async with asyncio.timeout(60):
        await listener.run()
    return listener


def test_detector_reports_speech_start_at_once_and_the_turn_with_pre_roll_at_its_end() -> None:
    detector = EndOfTurnDetector(TurnSettings(end_silence_s=0.3, pre_roll_s=0.064, min_speech_s=0.1))
    chunk_s = VAD_CHUNK / 16_000
    probabilities = [0.0] * 5 + [0.9] * 10 + [0.0] * 12
    events = []
    for i, p in enumerate(probabilities):
        for event in detector.push(np.full(VAD_CHUNK, i, dtype=np.float32), i * chunk_s, p):
            events.append((i, event))
    assert [type(e) for _, e in events] == [SpeechStarted, SpeechConfirmed, TurnEnded]
    assert events[0][0] == 5
    assert events[1][0] == 8  # 0.1 s voiced: a remark, not a click (barge-in while the avatar prepares)
    index, turn = events[2]
    assert isinstance(turn, TurnEnded)
    assert turn.start_s == pytest.approx(5 * chunk_s) and turn.end_s == pytest.approx(15 * chunk_s)
    assert index == 14 + 10  # 0.3 s of silence (10 chunks) after the last voiced chunk
    assert turn.audio[0] == 3.0  # two chunks of pre-roll before chunk 5


def test_detector_says_when_speech_comes_back_after_the_turn_so_far_was_offered_early() -> None:
    detector = EndOfTurnDetector(TurnSettings(end_silence_s=0.3, min_speech_s=0.1, early_asr_s=0.064))
    chunk_s = VAD_CHUNK / 16_000
    probabilities = [0.9] * 10 + [0.0] * 4 + [0.9] * 5 + [0.0] + [0.9] + [0.0] * 12
    events = []
    for i, p in enumerate(probabilities):
        events += [(i, e) for e in detector.push(np.zeros(VAD_CHUNK, dtype=np.float32), i * chunk_s, p)]
    kinds = [type(e) for _, e in events]
    assert kinds == [SpeechStarted, SpeechConfirmed, SilenceStarted, SpeechResumed, SilenceStarted, TurnEnded]
    resumed = events[3]
    assert resumed[0] == 14 and resumed[1].t_s == pytest.approx(14 * chunk_s)  # the first voiced chunk after
    offered = events[4][1]
    assert isinstance(offered, SilenceStarted) and offered.start_s == 0.0
    assert offered.voice_end_s == pytest.approx(21 * chunk_s)  # a one-chunk gap offers nothing and resumes nothing


@pytest.mark.parametrize(("voiced_chunks", "judged"), [(17, False), (40, True)])
def test_only_a_turn_with_a_second_of_speech_goes_to_the_end_of_turn_model(voiced_chunks: int, judged: bool) -> None:
    """ "Alex," said alone sounds complete to Smart Turn: a short turn ends on silence, never on the model's word."""
    detector = EndOfTurnDetector(TurnSettings(pause_s=0.2, end_silence_s=0.32, max_end_silence_s=2.0))
    events = []
    for i, p in enumerate([0.9] * voiced_chunks + [0.0] * 20):
        events += [(i, e) for e in detector.push(np.zeros(VAD_CHUNK, dtype=np.float32), i * 0.032, p)]
    kinds = [type(e) for _, e in events]
    if judged:  # 1.28 s voiced: judged after 200 ms of pause, still open after 320 ms (waits for the verdict)
        assert kinds == [SpeechStarted, SpeechConfirmed, PauseDetected]
    else:  # 0.54 s voiced: not judged, ended by 320 ms of silence as with silence alone
        assert kinds == [SpeechStarted, SpeechConfirmed, TurnEnded]
        assert events[-1][0] == voiced_chunks + 9  # 10 silent chunks: 0.32 s


class LateFirstChunk:
    """A live source whose first chunk reaches the listener 300 ms late (a busy loop at start), the rest on time."""

    def __init__(self) -> None:
        self.started = 0.0

    async def chunks(self) -> AsyncIterator[AudioChunk]:
        self.started = time.monotonic()
        for i in range(40):  # 0.8 s: the chunks after the late one catch up and come on time
            end_s = (i + 1) * 0.02
            delay = max(0.3 if i == 0 else 0.0, self.started + end_s - time.monotonic())
            await asyncio.sleep(delay)
            yield AudioChunk(np.zeros(320, np.float32), i * 0.02)

    async def close(self) -> None:
        return None


async def test_the_listeners_clock_is_the_sources_even_when_the_first_chunk_comes_late(
    transcriber: FasterWhisperTranscriber,
) -> None:
    source = LateFirstChunk()
    listener = Listener(source, transcriber)
    async with asyncio.timeout(30):
        await listener.run()
    assert listener.origin is not None
    assert abs(listener.origin - source.started) < 0.06  # not 0.3 s late: times after it would run ahead


def test_detector_discards_a_click_shorter_than_min_speech() -> None:
    detector = EndOfTurnDetector(TurnSettings(min_speech_s=0.25, end_silence_s=0.2))
    events = []
    for i, p in enumerate([0.9, 0.9] + [0.0] * 10):
        events += detector.push(np.zeros(VAD_CHUNK, dtype=np.float32), i * 0.032, p)
    assert [type(e) for e in events] == [SpeechStarted, SpeechDiscarded]


async def test_turns_are_split_at_pauses_and_transcribed(
    two_questions: Path, transcriber: FasterWhisperTranscriber
) -> None:
    listener = await listen(two_questions, transcriber)
    assert len(listener.turns) == 2
    first, second = listener.turns
    assert first.start_s == pytest.approx(1.0, abs=0.15)
    assert first.end_s < second.start_s
    assert word_error_rate(SENTENCES[0], first.text) <= 0.15
    assert word_error_rate(SENTENCES[1], second.text) <= 0.15
    assert first.language == "en"


async def test_word_error_rate_on_clear_speech_is_at_most_15_percent(
    tmp_path: Path, transcriber: FasterWhisperTranscriber
) -> None:
    listener = await listen(conversation(tmp_path / "all.wav", SENTENCES), transcriber)
    hypothesis = " ".join(t.text for t in listener.turns)
    assert len(listener.turns) == len(SENTENCES)
    assert word_error_rate(" ".join(SENTENCES), hypothesis) <= 0.15


async def test_silence_and_noise_produce_no_turn(tmp_path: Path, transcriber: FasterWhisperTranscriber) -> None:
    rng = np.random.default_rng(7)
    noise = np.concatenate([np.zeros(48_000), rng.normal(0, 2_000, 48_000 * 2), np.zeros(16_000)])
    listener = await listen(write_wav(tmp_path / "noise.wav", noise, 16_000), transcriber)
    assert listener.turns == []


def test_missing_device_names_the_available_ones() -> None:
    devices = [
        AudioDevice(0, "Built-in Microphone", "ALSA", 2, 0, 48_000.0),
        AudioDevice(1, "Speakers", "ALSA", 0, 2, 48_000.0),
    ]
    with pytest.raises(AudioInputError, match=r"(?s)cannot find input device 'USB'.*Built-in Microphone") as caught:
        resolve_input_device("USB", devices)
    assert "Speakers" not in str(caught.value)
    assert resolve_input_device("built-in", devices).index == 0
    assert resolve_input_device("0", devices).index == 0


def test_bad_input_specs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(AudioInputError, match="neither mic"):
        open_audio_source(str(tmp_path / "nope.wav"))
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF0000WAVEjunk")
    source = open_audio_source(str(broken))

    async def drain() -> None:
        async for _ in source.chunks():
            pass

    with pytest.raises(AudioInputError, match="cannot open|cannot decode"):
        asyncio.run(drain())


# -- over a real data channel ------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def connected(service: SignalingService, token: str) -> AsyncIterator[tuple[RemotePeer, LocalPeer]]:
    fields = {
        "signaling": service.base_url,
        "room": "t",
        "token": token,
        "ice_servers": [],
        "ice_host_addresses": ["127.0.0.1"],
    }
    remote = RemotePeer(RemoteSettings.load({**fields, "width": 256, "height": 128, "source": "test-pattern"}))
    local = LocalPeer(LocalSettings.load({**fields, "input": "none"}), [CollectingSink()])
    stop = asyncio.Event()
    tasks = [asyncio.create_task(remote.run(stop)), asyncio.create_task(local.run(stop))]
    try:
        async with asyncio.timeout(15):
            session = await local.wait_session()
            await session.channel_open.wait()
        yield remote, local
    finally:
        stop.set()
        async with asyncio.timeout(15):
            await asyncio.gather(*tasks)


async def test_a_file_input_sends_transcripts_to_the_remote_peer(
    signaling: SignalingService, token: str, two_questions: Path, transcriber: FasterWhisperTranscriber
) -> None:
    async with connected(signaling, token) as (remote, local):
        sender = TranscriptSender(local)
        listener = Listener(FileAudioSource(two_questions, realtime=True), transcriber)
        sender.attach(listener)
        async with asyncio.timeout(30):
            await listener.run()
            while len(remote.avatar.transcripts) < 2:
                remote.avatar.transcript_arrived.clear()
                await remote.avatar.transcript_arrived.wait()
    texts = [t.text for t in remote.avatar.transcripts]
    assert word_error_rate(" ".join(SENTENCES[:2]), " ".join(texts)) <= 0.15
    first = remote.avatar.transcripts[0]
    assert first.turn_id and first.language == "en" and first.sent_at is not None
    timings = first.timings
    assert timings.speech_start_s is not None and timings.speech_end_s is not None
    assert timings.speech_start_s < timings.speech_end_s <= timings.asr_start_s <= timings.asr_done_s  # type: ignore[operator]


async def test_barge_in_sends_interrupt_while_the_remote_reports_speaking(
    signaling: SignalingService, token: str, tmp_path: Path, transcriber: FasterWhisperTranscriber
) -> None:
    speech = espeak(SENTENCES[2], tmp_path / "barge.wav")
    async with connected(signaling, token) as (remote, local):
        sender = TranscriptSender(local)
        for session in remote.sessions.values():
            session.send(Turn(turn_id="a1", state="speaking", text="Let me tell you a long story"))
        async with asyncio.timeout(10):
            await sender.turn_state_changed.wait()  # the turn message travels over the data channel
        assert sender.avatar_speaking
        listener = Listener(FileAudioSource(speech, realtime=True), transcriber)
        sender.attach(listener)
        listening = asyncio.create_task(listener.run())
        async with asyncio.timeout(30):
            await remote.avatar.interrupt_arrived.wait()
            transcripts_at_interrupt = len(remote.avatar.transcripts)
            await listening
    assert remote.avatar.interrupts_received == 1 and sender.interrupts_sent == 1
    assert transcripts_at_interrupt == 0  # it went out at speech start, before the turn's transcript
    assert remote.stream.scheduler.stats.cleared == 1


async def test_half_duplex_ignores_input_while_the_avatar_speaks(
    signaling: SignalingService, token: str, two_questions: Path, transcriber: FasterWhisperTranscriber
) -> None:
    async with connected(signaling, token) as (remote, local):
        sender = TranscriptSender(local, half_duplex=True)
        listener = Listener(FileAudioSource(two_questions, realtime=False), transcriber)
        sender.attach(listener)
        sender.on_message(Turn(turn_id="a1", state="speaking"))
        async with asyncio.timeout(30):
            turns = await listener.run()
    assert listener.muted and turns == [] and sender.interrupts_sent == 0


async def test_asr_runs_during_the_end_of_turn_wait_and_a_resumed_sentence_is_transcribed_whole(
    tmp_path: Path, transcriber: FasterWhisperTranscriber
) -> None:
    rate = 22_050

    def spoken(text: str, path: Path) -> np.ndarray:
        samples, _ = read_wav(espeak(text, path))
        loud = np.flatnonzero(np.abs(samples) > 300)
        return samples[loud[0] : loud[-1] + 1]  # without espeak-ng's own silence around the words

    first = spoken("So the plan for next week is to", tmp_path / "a.wav")
    second = spoken("review the budget with the team.", tmp_path / "b.wav")
    gap = np.zeros(int(0.2 * rate), np.int16)  # longer than the 100 ms that start the early ASR, shorter than 320 ms
    path = write_wav(
        tmp_path / "resumed.wav", np.concatenate([gap, first, gap, second, np.zeros(rate, np.int16)]), rate
    )
    listener = Listener(  # in real time: the listener's clock is the file's
        FileAudioSource(path, realtime=True),
        transcriber,
        turn_settings=TurnSettings(early_asr_s=0.1, end_silence_s=0.32),
    )
    async with asyncio.timeout(60):
        await listener.run()
    assert len(listener.turns) == 1
    turn = listener.turns[0]
    assert "plan" in turn.text.lower() and "team" in turn.text.lower()  # the early result of the first half: dropped
    assert turn.asr_early and turn.end_s < turn.asr_start_s < turn.detected_s  # began inside the silence wait


async def test_a_turn_transcribed_during_its_end_wait_goes_out_early_and_is_retracted_when_the_speaker_goes_on(
    signaling: SignalingService, token: str, tmp_path: Path, transcriber: FasterWhisperTranscriber
) -> None:
    rate = 22_050

    def spoken(text: str, path: Path) -> np.ndarray:
        samples, _ = read_wav(espeak(text, path))
        loud = np.flatnonzero(np.abs(samples) > 300)
        return samples[loud[0] : loud[-1] + 1]

    first = spoken("So the plan for next week is to", tmp_path / "a.wav")
    second = spoken("review the budget with the team.", tmp_path / "b.wav")
    # time enough for the early ASR (about 0.2 s), shorter than the end of turn; after a pause of a second tiny.en
    # often stops at "is to..." (in its 30 s window too)
    pause = np.zeros(int(0.6 * rate), np.int16)
    path = write_wav(
        tmp_path / "went-on.wav",
        np.concatenate([np.zeros(int(0.2 * rate), np.int16), first, pause, second, np.zeros(3 * rate, np.int16)]),
        rate,
    )
    async with connected(signaling, token) as (remote, local):
        sender = TranscriptSender(local)
        listener = Listener(
            FileAudioSource(path, realtime=True),
            transcriber,
            turn_settings=TurnSettings(early_asr_s=0.032, end_silence_s=2.0),
        )
        sender.attach(listener)
        async with asyncio.timeout(60):
            turns = await listener.run()
            while not remote.avatar.transcripts:
                remote.avatar.transcript_arrived.clear()
                await remote.avatar.transcript_arrived.wait()
    assert len(turns) == 1 and len(sender.early_sent) == 2
    went_on, kept = sender.early_sent
    assert "plan" in went_on.text.lower() and "team" not in went_on.text.lower()
    assert sender.retracted == [went_on.turn_id]  # the speaker went on after it
    transcript = remote.avatar.transcripts[0]
    assert transcript.turn_id == kept.turn_id == turns[0].turn_id != went_on.turn_id  # the turn keeps its id
    assert transcript.text == kept.text and "team" in transcript.text.lower()
    assert [m.turn_id for m in remote.avatar.early_transcripts] == [went_on.turn_id, kept.turn_id]
    assert kept.timings.speech_end_s is not None and kept.timings.speech_end_s < kept.timings.asr_done_s  # type: ignore[operator]
