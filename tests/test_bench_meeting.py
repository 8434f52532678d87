"""The meeting benchmark's scoring: turns are matched to scripted lines by time, and talk-over, cut lines and
answers to the wrong lines are counted (the run itself is ``avatar bench meeting``); its baseline, the naive
chain of the same models, adds the silence, the ASR and the reply."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.harness.speech import espeak
from benchmarks.meeting import SCRIPT, render_script, score
from benchmarks.naive_chain import END_SILENCE_MS, NaiveChain
from peer_local.asr import FasterWhisperTranscriber
from peer_local.audio_input.file_source import read_file
from peer_remote.backends import build_llm, build_persona, build_tts
from peer_remote.settings import RemoteSettings


def test_the_script_renders_every_line_in_order_with_the_overlap(tmp_path: Path) -> None:
    path, lines = render_script(tmp_path)
    assert path.is_file() and len(lines) == len(SCRIPT)
    overlapping = next(i for i, line in enumerate(SCRIPT) if line.overlap_s)
    assert lines[overlapping]["start_s"] < lines[overlapping - 1]["end_s"]  # two people at once
    assert sum(line["addressed"] for line in lines) == sum(line.addressed for line in SCRIPT) >= 3


def test_scoring_counts_answers_talk_over_and_cut_lines() -> None:
    lines = [
        {"line": 0, "addressed": False, "mid_sentence_pause": True, "start_s": 1.0, "end_s": 4.0, "text": "a"},
        {"line": 1, "addressed": True, "mid_sentence_pause": False, "start_s": 5.0, "end_s": 7.0, "text": "b"},
        {"line": 2, "addressed": False, "mid_sentence_pause": False, "start_s": 12.0, "end_s": 14.0, "text": "c"},
    ]
    report = {
        "turns": [
            {"turn_id": "t1", "text": "a1", "start_s": 1.0, "end_s": 2.0},
            {"turn_id": "t2", "text": "a2", "start_s": 2.8, "end_s": 4.0},  # the pause cut line 0
            {"turn_id": "t3", "text": "b", "start_s": 5.0, "end_s": 7.0, "end_of_speech_to_first_audio_ms": 900.0},
            {"turn_id": "t4", "text": "c", "start_s": 12.0, "end_s": 14.0},
        ],
        "decisions": [
            {"turn_id": "t1", "answered": False, "reason": "not addressed"},
            {"turn_id": "t2", "answered": False, "reason": "not addressed"},
            {"turn_id": "t3", "answered": True, "reason": "answered"},
            {"turn_id": "t4", "answered": True, "reason": "answered"},
        ],
        "avatar_sounding_s": [[8.0, 11.0], [13.0, 15.0]],  # the second starts while line 2 is spoken
        "early_transcripts": {"sent": ["t0", "t3"], "retracted": ["t0"]},
    }
    result = score(lines, report)
    assert result["answered_when_addressed"] == 1 and result["answered_when_addressed_share"] == 1.0
    assert result["answered_when_not_addressed"] == 1
    assert result["talk_over_events"] == 1 and result["talk_over_at_s"] == [13.0]
    assert result["lines_cut_into_several_turns"] == 1 and result["mid_sentence_pause_lines_cut"] == 1
    assert result["end_of_speech_to_first_audio_ms"]["p50"] == 900.0
    assert result["early_transcripts_sent"] == 2 and result["early_transcripts_retracted"] == 1


@pytest.mark.slow
async def test_the_naive_chain_times_a_spoken_turn_as_silence_then_asr_then_the_reply(tmp_path: Path) -> None:
    speaking = RemoteSettings.load({})
    llm, tts = build_llm(speaking), build_tts(speaking)
    transcriber = FasterWhisperTranscriber()
    transcriber.load()
    chain = NaiveChain(llm, tts, build_persona(speaking, llm.name), speaking.context_tokens, 24, 0.0)
    question = read_file(espeak("Alex, when is the release?", tmp_path / "question.wav"))
    figures = await chain.spoken_turn_ms(transcriber.transcribe_full_window, question)
    assert figures is not None and "release" in figures.text.lower()
    assert figures.asr_ms > 0 and figures.reply_ms > 0
    assert figures.total_ms == pytest.approx(END_SILENCE_MS + figures.asr_ms + figures.reply_ms, abs=0.2)
    assert (
        await chain.spoken_turn_ms(transcriber.transcribe_full_window, np.zeros(16_000, np.float32)) is None
    )  # silence: no words
