"""Echo (issue 22): the clone's own voice coming back through the meeting's audio is never taken for someone
speaking and never transcribed.

The loopback here is in process: the audio the local peer receives from the avatar (real peers, the embedded LLM
and Piper) is resampled to 16 kHz, delayed by 300 ms and fed back into the listener, as a meeting that plays the
clone's voice back would (the worst case: no echo cancellation, full level). A person's voice can be mixed in.
The delay is why half-duplex stays deaf for ``half_duplex_tail_ms`` (400) after the avatar stops speaking: the
last 300 ms of its voice arrive after its ``done``.

Measured trade-off of the half-duplex design (``--half-duplex``): the clone's voice is never heard, but neither is
a person who talks over it (no barge-in while it speaks); they are heard again as soon as it stops. Without
half-duplex, the clone's own voice interrupts it.

Guards against: the clone answering or interrupting itself, speech start (floor held) from its own voice, and its
voice's tail being heard after it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from benchmarks.harness.speech import espeak, read_wav
from media.protocol import Transcript, Turn
from peer_local.asr import FasterWhisperTranscriber
from peer_local.audio_input.base import ASR_RATE, AudioChunk
from peer_local.audio_input.resampling import MonoResampler16k
from peer_local.listener import Listener
from peer_local.service import LocalPeer
from peer_local.settings import LocalSettings
from peer_local.transcript_sender import TranscriptSender
from peer_remote.service import RemotePeer
from peer_remote.settings import RemoteSettings
from signaling.server import SignalingService
from tests.peer_helpers import peer_fields

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]  # two models load; slow on a shared machine

QUESTION = "Alex, tell me about your weekend, please."
OVER_THE_CLONE = "Sorry, one thing."
AFTER_THE_CLONE = "Thank you, let us move on to the budget."
ECHO_DELAY_S = 0.3  # the clone's voice comes back this late (a meeting's round trip)
CLONE_SOUNDING = 0.02  # peak (float) above which the avatar's audio counts as its voice
LOOPBACK_CHUNKS = 500  # 10 s of 20 ms frames


class MeetingLoopback:
    """A sink and an audio source at once: what the avatar says comes back as the listener's input, with a
    person's voice mixed in on request."""

    name = "in-process meeting loopback"

    def __init__(self, delay_s: float) -> None:
        self._delay_line = np.zeros(int(delay_s * ASR_RATE), dtype=np.float32)  # the meeting's round trip
        self._resampler = MonoResampler16k()
        self._queue: asyncio.Queue[AudioChunk | None] = asyncio.Queue(maxsize=LOOPBACK_CHUNKS)
        self._position_s = 0.0
        self._origin: float | None = None
        self._opened = False
        self._person = np.zeros(0, dtype=np.float32)
        self.clone_sounding_s: list[float] = []  # loopback times of chunks carrying the clone's voice

    def say(self, samples: np.ndarray) -> None:
        """Mix a person's voice (16 kHz float) into the input from now on."""
        self._person = samples.copy()

    def on_audio(self, frame: av.AudioFrame, arrival: float) -> None:
        if not self._opened:
            return  # a device not opened yet captures nothing
        received = self._resampler.frame(frame)
        if not received.size:
            return
        line = np.concatenate([self._delay_line, received])
        samples, self._delay_line = line[: received.size], line[received.size :]
        clone_sounding = float(np.abs(samples).max()) > CLONE_SOUNDING
        if self._person.size:
            mixed, self._person = self._person[: samples.size], self._person[samples.size :]
            samples = samples.copy()
            samples[: mixed.size] += mixed
        # stamped like a capture device: on the wall clock (its audio arrives late and unevenly on a loaded machine)
        now = time.monotonic()
        self._origin = now if self._origin is None else self._origin
        t_s = max(self._position_s, now - self._origin - samples.size / ASR_RATE)
        chunk = AudioChunk(np.clip(samples, -1.0, 1.0), t_s)
        self._position_s = t_s + samples.size / ASR_RATE
        if clone_sounding:
            self.clone_sounding_s.append(t_s)
        with contextlib.suppress(asyncio.QueueFull):  # a stalled listener loses input, as a device would
            self._queue.put_nowait(chunk)

    def on_video(self, frame: av.VideoFrame, arrival: float) -> None:
        return None

    def on_connection(self, connected: bool) -> None:
        return None

    async def chunks(self) -> AsyncIterator[AudioChunk]:
        self._opened = True
        while (chunk := await self._queue.get()) is not None:
            yield chunk

    async def close(self) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)


def voice(text: str, path: Path) -> np.ndarray:
    samples, rate = read_wav(espeak(text, path))
    return MonoResampler16k().samples(samples.astype(np.float32) / 32768, rate)


@pytest.fixture(scope="module")
def transcriber() -> FasterWhisperTranscriber:
    model = FasterWhisperTranscriber()
    model.load()
    return model


@contextlib.asynccontextmanager
async def echoing_meeting(
    signaling: SignalingService, token: str, transcriber: FasterWhisperTranscriber, half_duplex: bool
) -> AsyncIterator[tuple[RemotePeer, TranscriptSender, Listener, MeetingLoopback]]:
    """The avatar (LLM, Piper) and a local peer whose listener hears the avatar's own voice through a loopback."""
    fields = {**peer_fields(signaling, token), "width": 256, "height": 256}
    remote = RemotePeer(RemoteSettings.load({**fields, "source": "avatar", "max_tokens": 40}))  # a few seconds
    loopback = MeetingLoopback(ECHO_DELAY_S)
    settings = LocalSettings.load({**fields, "input": "none", "answer": "always"})
    local = LocalPeer(settings, [loopback])
    sender = TranscriptSender(local, half_duplex=half_duplex, echo_tail_s=settings.half_duplex_tail_ms / 1000)
    listener = Listener(loopback, transcriber)
    sender.attach(listener)
    stop = asyncio.Event()
    tasks: list[asyncio.Task[Any]] = [asyncio.create_task(remote.run(stop)), asyncio.create_task(local.run(stop))]
    try:
        async with asyncio.timeout(90):
            session = await local.wait_session()
            await session.channel_open.wait()
        tasks.append(asyncio.create_task(listener.run()))
        yield remote, sender, listener, loopback
    finally:
        stop.set()
        await loopback.close()
        async with asyncio.timeout(20):
            await asyncio.gather(*tasks, return_exceptions=True)


async def turn_state(sender: TranscriptSender, turn_id: str, state: str, timeout_s: float = 120) -> None:
    async with asyncio.timeout(timeout_s):
        while not any(isinstance(m, Turn) and m.turn_id == turn_id and m.state == state for m in sender.received):
            sender.turn_state_changed.clear()
            await sender.turn_state_changed.wait()


def ask(sender: TranscriptSender, turn_id: str, text: str) -> None:
    assert sender.peer.send(Transcript(turn_id=turn_id, text=text, language="en"))


async def test_without_half_duplex_the_clones_own_voice_is_taken_for_a_speaker_and_interrupts_it(
    signaling: SignalingService, token: str, transcriber: FasterWhisperTranscriber
) -> None:
    async with echoing_meeting(signaling, token, transcriber, half_duplex=False) as (remote, sender, _, loopback):
        ask(sender, "q1", QUESTION)
        await turn_state(sender, "q1", "done")
    assert loopback.clone_sounding_s  # the clone spoke, and its voice came back
    assert sender.speech_messages_sent >= 1 and sender.interrupts_sent >= 1  # it heard itself and barged in
    assert remote.avatar.interrupts_received >= 1


async def test_half_duplex_never_hears_the_clones_voice_nor_a_person_over_it_but_hears_people_once_it_stops(
    signaling: SignalingService, token: str, transcriber: FasterWhisperTranscriber, tmp_path: Path
) -> None:
    over, after = voice(OVER_THE_CLONE, tmp_path / "over.wav"), voice(AFTER_THE_CLONE, tmp_path / "after.wav")
    async with echoing_meeting(signaling, token, transcriber, half_duplex=True) as (remote, sender, listener, loop):
        ask(sender, "q1", QUESTION)
        await turn_state(sender, "q1", "speaking")
        loop.say(over)  # a person talks over the clone: not heard (the half-duplex trade-off)
        await turn_state(sender, "q1", "done")
        during = (sender.speech_messages_sent, sender.interrupts_sent, len(listener.turns))
        # once the clone is silent (and its echo has passed), people are heard again: this one starts 0.5 s later
        loop.say(np.concatenate([np.zeros(ASR_RATE // 2, dtype=np.float32), after]))
        async with asyncio.timeout(60):
            while len(remote.avatar.transcripts) < 2:  # q1, then what the listener heard
                remote.avatar.transcript_arrived.clear()
                await remote.avatar.transcript_arrived.wait()
    assert loop.clone_sounding_s  # the clone spoke, and its voice came back
    assert during == (0, 0, 0)  # no speech start, no barge-in, nothing transcribed while it spoke
    states = [m.state for m in sender.received if isinstance(m, Turn) and m.turn_id == "q1"]
    assert states == ["thinking", "speaking", "done"]  # never interrupted
    assert [t.text for t in listener.turns] == [remote.avatar.transcripts[1].text]
    heard = remote.avatar.transcripts[1].text.lower()
    assert "thank you" in heard and "move on" in heard  # whole, from its first words
