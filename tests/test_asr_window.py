"""Whisper's encoder in a short window: the same words as the 30 s window, the full window where it would not be."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import peer_local.asr.whisper as whisper
from benchmarks.harness.speech import espeak
from peer_local.asr import FasterWhisperTranscriber, WhisperSettings
from peer_local.asr.short_window import fits_window, repeats_itself, transcribe_windowed
from peer_local.asr.wer import word_error_rate
from peer_local.audio_input.base import ASR_RATE
from peer_local.audio_input.file_source import read_file

LINES = [
    ("How many people are coming to the workshop?", "en-us+f3"),
    ("Can you share your screen with everyone?", "en-gb+m7"),
    ("The customer asked for a demo next week.", "en-us+m3"),
]


@pytest.fixture(scope="module")
def transcriber() -> FasterWhisperTranscriber:
    model = FasterWhisperTranscriber(WhisperSettings())
    model.load()
    return model


def spoken(text: str, voice: str, path: Path) -> np.ndarray:
    speech = read_file(espeak(text, path, voice=voice))
    return np.concatenate([np.zeros(ASR_RATE // 5, np.float32), speech, np.zeros(ASR_RATE // 10, np.float32)])


@pytest.mark.parametrize(("text", "voice"), LINES)
def test_a_short_turn_reads_the_same_in_a_10_s_window_as_in_whisper_s_30_s_one(
    transcriber: FasterWhisperTranscriber, text: str, voice: str, tmp_path: Path
) -> None:
    audio = spoken(text, voice, tmp_path / "line.wav")
    windowed = transcribe_windowed(transcriber._model, audio, 10.0, 5, "en")
    assert windowed is not None  # reliable: no fall back to the full window
    full = transcriber.transcribe_full_window(audio)
    assert word_error_rate(text, windowed.text) <= word_error_rate(text, full.text)
    assert windowed.no_speech_prob is not None and windowed.no_speech_prob < 0.5
    assert windowed.avg_logprob is not None and windowed.avg_logprob > -1.0
    assert transcriber.transcribe(audio).text == windowed.text  # what the listener gets


def test_silence_has_no_words_in_the_short_window(transcriber: FasterWhisperTranscriber) -> None:
    assert transcriber.transcribe(np.zeros(2 * ASR_RATE, np.float32)).text == ""


def test_a_turn_too_long_for_the_window_or_an_unreliable_one_goes_through_the_full_window(
    transcriber: FasterWhisperTranscriber, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert fits_window(np.zeros(8 * ASR_RATE), 10.0, 2.0, ASR_RATE)
    assert not fits_window(np.zeros(8 * ASR_RATE + 1), 10.0, 2.0, ASR_RATE)  # less than 2 s of padding left
    assert not fits_window(np.zeros(ASR_RATE), 30.0, 2.0, ASR_RATE)  # 30 s: whisper's own path always
    audio = spoken(*LINES[0], tmp_path / "line.wav")
    windows: list[float] = []

    def unreliable(model: object, samples: np.ndarray, window_s: float, beam: int, language: str | None) -> None:
        windows.append(window_s)
        return None  # as when the short window repeats a sentence

    monkeypatch.setattr(whisper, "transcribe_windowed", unreliable)
    result = transcriber.transcribe(audio)
    assert windows == [10.0] and word_error_rate(LINES[0][0], result.text) < 0.2  # the full window's answer


def test_a_repeated_sentence_is_recognised_as_the_short_window_s_failure() -> None:
    assert repeats_itself("Let me share my screen now. Let me share my screen now.")
    assert repeats_itself("How many people are coming? how many people are coming")
    assert not repeats_itself("Thank you. That sounds like a very good idea.")
    assert not repeats_itself("")
