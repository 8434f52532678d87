"""A short turn through Whisper's encoder in a window shorter than 30 s.

faster-whisper pads every segment's log-mel features to Whisper's 30 s window (``audio.pad_or_trim`` to 3000
frames) before the encoder, so a 3 s turn costs as much encoder time as 30 s of audio. CTranslate2's encoder takes
up to 3000 frames, fewer too (``WhisperEncoder::operator()`` in CTranslate2's ``src/layers/whisper.cc`` rejects
only more than ``max_input_time()``). Trimmed to the speech alone, ``tiny.en`` repeats its sentence; padded to a
10 s window it transcribes the benchmark's 21 spoken lines exactly as the 30 s window does in 40 % of the time.

The decode mirrors faster-whisper 1.2's ``WhisperModel.generate_with_fallback`` at temperature 0 (its default
options, read from ``faster_whisper/transcribe.py``): the prompt ``sot_sequence`` + ``<|notimestamps|>``, blank and
non-speech tokens suppressed, ``avg_logprob`` recovered from the length-normalised score. Where faster-whisper
would fall back to sampling (compression ratio above 2.4, too repetitive; average log-probability under -1 while
not silence), :func:`transcribe_windowed` returns None and the caller runs faster-whisper's own 30 s path.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from peer_local.asr.base import AsrResult

FULL_WINDOW_S = 30.0
FRAMES_PER_S = 100  # log-mel frames (hop of 160 samples at 16 kHz)
MAX_INITIAL_TIMESTAMP_S = 1.0
COMPRESSION_RATIO_THRESHOLD = 2.4  # faster-whisper's TranscriptionOptions defaults
LOG_PROB_THRESHOLD = -1.0
NO_SPEECH_THRESHOLD = 0.6
_SENTENCE = re.compile(r"[^.!?]+[.!?]?")


def repeats_itself(text: str) -> bool:
    """The same sentence twice in a row: the hallucination a too-short window invites."""
    sentences = [s.strip(" .!?").lower() for s in _SENTENCE.findall(text) if s.strip(" .!?")]
    return any(a == b for a, b in zip(sentences, sentences[1:], strict=False))


def fits_window(audio: np.ndarray, window_s: float, margin_s: float, rate: int) -> bool:
    """Whether ``audio`` leaves ``margin_s`` of padding in a window of ``window_s`` (and the window is short)."""
    return window_s < FULL_WINDOW_S and audio.size / rate <= window_s - margin_s


def transcribe_windowed(
    model: Any, audio: np.ndarray, window_s: float, beam_size: int, language: str | None
) -> AsrResult | None:
    """``audio`` (16 kHz float32) decoded in a ``window_s`` encoder window by faster-whisper's ``WhisperModel``
    ``model``; None where faster-whisper would fall back (the caller then runs the full window)."""
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_compression_ratio, get_suppressed_tokens

    features = model.feature_extractor(audio)
    content_frames = features.shape[-1] - 1  # as faster-whisper's transcribe: the last frame is padding
    features = pad_or_trim(features[:, :content_frames], int(window_s * FRAMES_PER_S))
    encoder_output = model.encode(features)
    if language is None and model.model.is_multilingual:
        language_token, _ = model.model.detect_language(encoder_output)[0][0]
        language = language_token[2:-2]
    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language or "en")
    prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
    result = model.model.generate(
        encoder_output,
        [prompt],
        beam_size=beam_size,
        patience=1.0,
        length_penalty=1.0,
        repetition_penalty=1.0,
        no_repeat_ngram_size=0,
        max_length=model.max_length,
        return_scores=True,
        return_no_speech_prob=True,
        suppress_blank=True,
        suppress_tokens=list(get_suppressed_tokens(tokenizer, [-1])),
        max_initial_timestamp_index=int(round(MAX_INITIAL_TIMESTAMP_S / model.time_precision)),
    )[0]
    tokens = result.sequences_ids[0]
    avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
    text = tokenizer.decode(tokens).strip()
    silent = result.no_speech_prob > NO_SPEECH_THRESHOLD
    if get_compression_ratio(text) > COMPRESSION_RATIO_THRESHOLD or repeats_itself(text):
        return None
    if avg_logprob < LOG_PROB_THRESHOLD and not silent:
        return None
    if silent and avg_logprob < LOG_PROB_THRESHOLD:
        text = ""  # faster-whisper skips such a segment as silence
    return AsrResult(
        text=text,
        language=language if model.model.is_multilingual else "en",
        no_speech_prob=result.no_speech_prob,
        avg_logprob=avg_logprob,
    )
