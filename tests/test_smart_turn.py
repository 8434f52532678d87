"""The learned end of turn (Smart Turn v3, real model): a complete sentence ends the turn at a short pause, a
pause mid-sentence does not cut the speaker off; the features are upstream's.

Guards against: a fixed 320 ms of silence cutting a speaker who pauses mid-sentence.
The model file comes from the pipecat-ai wheel (.ci/run fetches it alone; AVATAR_SMART_TURN_MODEL points at it).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from avatar.main import main
from benchmarks.harness.speech import espeak, read_wav, write_wav
from peer_local.asr import FasterWhisperTranscriber
from peer_local.audio_input.file_source import FileAudioSource
from peer_local.listener import Listener
from peer_local.settings import LocalSettings
from peer_local.smart_turn import SmartTurnModel, SmartTurnModelError, log_mel_features, smart_turn_model_path


def model_file() -> Path:
    given = os.environ.get("AVATAR_SMART_TURN_MODEL")
    try:
        return smart_turn_model_path(Path(given) if given else None)
    except SmartTurnModelError as exc:
        pytest.skip(f"no Smart Turn model here ({exc}); .ci/run fetches it")


@pytest.fixture(scope="module")
def model() -> SmartTurnModel:
    loaded = SmartTurnModel(model_file())
    loaded.load()
    return loaded


@pytest.fixture(scope="module")
def transcriber() -> FasterWhisperTranscriber:
    asr = FasterWhisperTranscriber()
    asr.load()
    return asr


def test_the_features_are_upstreams_whisper_log_mel(model: SmartTurnModel) -> None:
    # upstream's numpy feature code sits beside the model in the wheel; it imports only numpy
    source = model.path.parent.parent / "_whisper_features.py"
    if not source.is_file():
        pytest.skip("the model was given without pipecat's feature code beside it")
    spec = importlib.util.spec_from_file_location("upstream_whisper_features", source)
    assert spec is not None and spec.loader is not None
    upstream = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(upstream)
    audio = np.random.default_rng(1).normal(0, 0.1, 16_000 * 3).astype(np.float32)
    expected = upstream.compute_whisper_log_mel_features(np.pad(audio, (16_000 * 5, 0)), do_normalize=True)
    assert np.abs(log_mel_features(audio) - expected).max() < 1e-5
    long = np.random.default_rng(2).normal(0, 0.1, 16_000 * 11).astype(np.float32)  # only the last 8 s count
    assert np.abs(log_mel_features(long) - upstream.compute_whisper_log_mel_features(long[-128_000:])).max() < 1e-5


def speech(parts: list[str | float], path: Path) -> Path:
    """espeak-ng sentences and silences (seconds) in one WAV."""
    rate = 22_050
    pieces = []
    for i, part in enumerate(parts):
        if isinstance(part, str):
            samples, rate = read_wav(espeak(part, path.with_name(f"{path.stem}-{i}.wav")))
            pieces.append(samples)
        else:
            pieces.append(np.zeros(int(part * rate), np.int16))
    return write_wav(path, np.concatenate(pieces), rate)


async def heard_turns(path: Path, transcriber: FasterWhisperTranscriber, model: SmartTurnModel | None) -> Listener:
    detector = "smart-turn" if model is not None else "silence"
    settings = LocalSettings.load({"turn_detector": detector, "input": "none"})
    listener = Listener(
        FileAudioSource(path, realtime=False),
        transcriber,
        turn_settings=settings.turn_settings(),
        turn_model=model,
    )
    async with asyncio.timeout(120):
        await listener.run()
    return listener


async def test_a_pause_mid_sentence_waits_and_a_complete_question_ends_the_turn_at_a_short_pause(
    tmp_path: Path, transcriber: FasterWhisperTranscriber, model: SmartTurnModel
) -> None:
    path = speech(
        [
            0.5,
            "So the plan for next week is to",
            0.8,  # a pause mid-sentence: longer than the 320 ms that end a turn by silence
            "review the budget with the team.",
            2.5,  # espeak-ng's flat statement is judged incomplete: the turn ends after the 2 s maximum wait
            "What time is the meeting with the design team tomorrow?",
            3.0,
        ],
        tmp_path / "pauses.wav",
    )
    smart = await heard_turns(path, transcriber, model)
    silence = await heard_turns(path, transcriber, None)
    assert len(silence.turns) == 3  # silence alone cuts the speaker at the pause
    assert len(smart.turns) == 2, [t.text for t in smart.turns]
    first, second = smart.turns
    assert "plan" in first.text.lower() and "team" in first.text.lower()  # one turn, not cut at the pause
    assert "meeting" in second.text.lower()
    assert first.silence_wait_ms >= 1900  # judged incomplete at every pause: ended by the maximum wait
    assert second.silence_wait_ms < 700  # a complete question ends at the short pause, far before the 2 s wait
    assert any(p < 0.5 for _, p in smart.verdicts) and any(p > 0.5 for _, p in smart.verdicts)


def test_smart_turn_without_a_model_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.onnx"
    heard = write_wav(tmp_path / "x.wav", np.zeros(16_000, np.int16), 16_000)
    code = main(["local", "--input", str(heard), "--turn-detector", "smart-turn", "--smart-turn-model",
                 str(missing), "--token", "t" * 20, "--signaling", "http://127.0.0.1:9"])  # fmt: skip
    assert code == 1 and f"Smart Turn model not found: {missing}" in capsys.readouterr().err
