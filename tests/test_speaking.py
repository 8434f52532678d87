"""peer_remote speaks: the real embedded LLM and Piper in process, a real llama.cpp server.

The Fish Speech client is tested in tests/test_fish_speech.py.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import wave
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest

from avatar.main import main
from media.clock import MediaClock
from media.frames import AUDIO_RATE
from media.protocol import DataMessage, Metrics, Transcript, Turn
from media.stream import AVStream
from peer_remote.avatar_producer import AvatarProducer
from peer_remote.conversation import Conversation, PersonaPrompt
from peer_remote.face.portrait import PortraitAnimator
from peer_remote.llm.base import ChatMessage, LlmError
from peer_remote.llm.embedded import LlamaCppModel, bundled_gguf
from peer_remote.llm.openai_compat import OpenAIChatModel
from peer_remote.responder import Responder
from peer_remote.tts.piper_voice import PiperSynthesizer

pytestmark = pytest.mark.slow

QUESTION = [ChatMessage("system", "You are Alex. Reply briefly."), ChatMessage("user", "What is your name?")]


@pytest.fixture(scope="module")
def llm() -> LlamaCppModel:
    model = LlamaCppModel()
    asyncio.run(model.load())
    return model


@pytest.fixture(scope="module")
def piper() -> PiperSynthesizer:
    voice = PiperSynthesizer()
    asyncio.run(voice.load())
    return voice


async def test_embedded_llm_streams_text_deltas(llm: LlamaCppModel) -> None:
    deltas = [d async for d in llm.stream(QUESTION, max_tokens=24, temperature=0.0)]
    assert len(deltas) > 3 and "".join(deltas).strip()


async def test_closing_the_stream_cancels_generation(llm: LlamaCppModel) -> None:
    stream = llm.stream(QUESTION, max_tokens=400, temperature=0.7)
    received = [await stream.__anext__() for _ in range(3)]
    async with asyncio.timeout(5):
        await stream.aclose()  # returns once the worker thread has stopped
    assert len(received) == 3
    # the model is free again at once
    assert [d async for d in llm.stream(QUESTION, max_tokens=4, temperature=0.0)]


async def test_a_paused_model_computes_nothing_while_its_reader_is_busy_and_keeps_up_with_one_that_reads(
    llm: LlamaCppModel,
) -> None:
    """Paused (the first clause's turn), a token is computed only once the reader has asked for it: while the reader
    is busy elsewhere (its TTS, here a blocking 0.3 s in a worker thread) the model evaluates nothing."""
    llm.pause_generation(True)
    stream = llm.stream(QUESTION, max_tokens=24, temperature=0.0)
    try:
        async with asyncio.timeout(30):
            first = [await stream.__anext__() for _ in range(2)]
            evaluated = llm._llama.n_tokens
            await asyncio.get_running_loop().run_in_executor(None, time.sleep, 0.3)
            assert llm._llama.n_tokens == evaluated  # nothing generated ahead of the busy reader
            rest = [d async for d in stream]  # read on, still paused: every delta comes
    finally:
        llm.pause_generation(False)
        await stream.aclose()  # type: ignore[attr-defined]
    unpaused = [d async for d in llm.stream(QUESTION, max_tokens=24, temperature=0.0)]
    assert "".join(first + rest) == "".join(unpaused)


def test_the_bundled_model_is_loaded_from_its_weights_re_encoded_once_as_q8_0(tmp_path: Path) -> None:
    model = LlamaCppModel(cache_dir=tmp_path)
    asyncio.run(model.load())
    cached = list(tmp_path.glob("*.Q8_0.gguf"))
    assert len(cached) == 1 and model._llama.model_path == str(cached[0])
    assert not list(tmp_path.glob("*.partial"))
    mtime = cached[0].stat().st_mtime_ns
    again = LlamaCppModel(cache_dir=tmp_path)
    asyncio.run(again.load())  # found in the cache, not written again
    assert again._llama.model_path == str(cached[0]) and cached[0].stat().st_mtime_ns == mtime
    other_install = tmp_path / "other-install" / bundled_gguf().name  # the same file, installed again later
    other_install.parent.mkdir()
    shutil.copyfile(bundled_gguf(), other_install)
    copy = LlamaCppModel(other_install, cache_dir=tmp_path, reencode="q8_0")
    asyncio.run(copy.load())
    assert copy._llama.model_path == str(cached[0]) and len(list(tmp_path.glob("*.Q8_0.gguf"))) == 1
    as_shipped = LlamaCppModel(cache_dir=tmp_path / "off", reencode="off")
    asyncio.run(as_shipped.load())
    assert as_shipped._llama.model_path == str(bundled_gguf()) and not (tmp_path / "off").exists()


def test_conversation_memory_is_bounded_and_starts_with_a_user_turn() -> None:
    conversation = Conversation(PersonaPrompt("You are Alex."), lambda text: len(text.split()), budget_tokens=60)
    for i in range(30):
        conversation.add_user(f"question number {i} about the plan")
        conversation.add_assistant(f"answer number {i} about the plan")
    messages = conversation.messages("uk")
    assert messages[0].role == "system" and messages[0].content.endswith("Reply in Ukrainian.")
    assert messages[1].role == "user" and messages[-1].content == "answer number 29 about the plan"
    assert sum(len(m.content.split()) for m in messages) <= 60 + 4 * len(messages)


def test_gemma_gets_the_persona_folded_into_the_first_user_turn() -> None:
    assert PersonaPrompt.needs_folding("INSAIT-Institute/MamayLM-Gemma-2-9B-IT-v0.1")
    conversation = Conversation(PersonaPrompt("You are Alex.", fold_system=True), len)
    conversation.add_user("Hi")
    messages = conversation.messages()
    assert [m.role for m in messages] == ["user"] and messages[0].content == "You are Alex.\n\nHi"


async def test_piper_speaks_a_non_silent_clip_whose_length_fits_the_text(piper: PiperSynthesizer) -> None:
    short = np.concatenate([b async for b in piper.synthesize("Yes.")])
    long = np.concatenate(
        [b async for b in piper.synthesize("Yes, I will send the quarterly report before Friday afternoon.")]
    )
    assert piper.sample_rate == 22_050
    assert np.abs(long).max() > 3_000
    assert 2.0 < long.size / 22_050 < 8.0 and short.size < long.size / 3


# -- OpenAI-compatible backend against a real llama.cpp server --------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(bundled_gguf()),
            "--model_alias",
            "smollm2",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "1024",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(600):  # bounded: up to 60 s for the server to load the model
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError("llama_cpp.server exited") from None
                time.sleep(0.1)  # the server is still loading: poll again (bounded by the loop)
        else:
            raise RuntimeError("llama_cpp.server did not start within 60 s")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_openai_backend_streams_from_a_real_llama_cpp_server(llama_server: str) -> None:
    model = OpenAIChatModel(llama_server, "smollm2")
    try:
        await model.load()
        deltas = [d async for d in model.stream(QUESTION, max_tokens=16, temperature=0.0)]
    finally:
        await model.close()
    assert len(deltas) > 2 and "".join(deltas).strip()


async def test_openai_backend_errors_are_clear(llama_server: str) -> None:
    wrong = OpenAIChatModel(llama_server, "no-such-model")
    with pytest.raises(LlmError, match="does not serve 'no-such-model'"):
        await wrong.load()
    await wrong.close()
    nowhere = OpenAIChatModel(f"http://127.0.0.1:{_free_port()}/v1", "x")
    with pytest.raises(LlmError, match="cannot reach"):
        await nowhere.load()
    await nowhere.close()


# -- the whole turn in process ------------------------------------------------------------------------------


@pytest.fixture
async def speaking(
    llm: LlamaCppModel, piper: PiperSynthesizer, tmp_path: Path
) -> AsyncIterator[tuple[Responder, AVStream, list[DataMessage]]]:
    clock = MediaClock()
    producer = AvatarProducer(PortraitAnimator(width=256, height=256, cache_dir=tmp_path))
    stream = AVStream(producer, clock, fps=25)
    messages: list[DataMessage] = []
    responder = Responder(
        llm, piper, Conversation(PersonaPrompt(), llm.count_tokens), producer, stream, messages.append
    )
    stream.start()
    yield responder, stream, messages
    await responder.close()
    await stream.stop()


async def test_a_transcript_becomes_a_48khz_spoken_answer_with_turns_and_metrics(
    speaking: tuple[Responder, AVStream, list[DataMessage]],
) -> None:
    responder, stream, messages = speaking
    audio, video = stream.subscribe()
    await responder.on_transcript(Transcript(turn_id="t1", text="What is your favourite colour?", language="en"))
    frames = []
    async with asyncio.timeout(60):
        while not responder.turn_finished.is_set():
            frames.append(await audio.recv())
    pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in frames])
    assert all(f.sample_rate == AUDIO_RATE for f in frames)
    speech = np.flatnonzero(np.abs(pcm) > 1_000)
    spoken_s = (speech[-1] - speech[0]) / AUDIO_RATE
    turns = [m for m in messages if isinstance(m, Turn)]
    assert [t.state for t in turns] == ["thinking", "speaking", "done"]
    text = turns[-1].text or ""
    assert text and 0.03 * len(text) < spoken_s < 0.15 * len(text) + 1.0  # the audio fits what was said
    metrics = next(m for m in messages if isinstance(m, Metrics))
    for key in (
        "llm_first_token_ms",
        "first_chunk_ready_ms",
        "tts_first_audio_ms",
        "first_audio_frame_sent_ms",
        "first_speaking_video_frame_sent_ms",
    ):
        assert metrics.values[key] > 0, key
    assert (
        metrics.values["llm_first_token_ms"]
        <= metrics.values["tts_first_audio_ms"]
        <= metrics.values["first_audio_frame_sent_ms"]
    )
    video.stop()


async def test_interrupt_silences_the_avatar_within_one_frame(
    speaking: tuple[Responder, AVStream, list[DataMessage]],
) -> None:
    responder, stream, messages = speaking
    audio, video = stream.subscribe()
    await responder.on_transcript(Transcript(turn_id="t2", text="Tell me a long story about the sea.", language="en"))
    async with asyncio.timeout(60):
        while not any(isinstance(m, Turn) and m.state == "speaking" for m in messages):
            await audio.recv()
        for _ in range(10):
            await audio.recv()  # well into the answer
        await responder.interrupt()
        interrupted_at = stream.clock.now()
        after = [await audio.recv() for _ in range(10)]
    late = [f for f in after if f.pts / AUDIO_RATE >= interrupted_at + 0.04]
    assert late and all(np.abs(f.to_ndarray()).max() == 0 for f in late)
    assert [m.state for m in messages if isinstance(m, Turn)][-1] == "done"
    assert not responder.busy
    video.stop()


def test_say_writes_a_48khz_wav(tmp_path: Path) -> None:
    out = tmp_path / "reply.wav"
    assert main(["say", "Nice to meet you.", "--out", str(out)]) == 0
    with wave.open(str(out)) as w:
        assert w.getframerate() == 48_000 and w.getnchannels() == 1
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    assert 0.5 < samples.size / 48_000 < 4 and np.abs(samples).max() > 3_000
