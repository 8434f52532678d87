"""Smart Turn v3: a learned end-of-turn model (BSD-2, pipecat-ai), judging from the sound of the last 8 s whether
a pause ends the speaker's turn or is a pause mid-sentence.

The ONNX file ships inside the ``pipecat-ai`` wheel (``pipecat/audio/turn/smart_turn/data/
smart-turn-v3.2-cpu.onnx``). pipecat-ai itself is not a dependency (it pulls numba, openai and more): the model
is read from an installed pipecat, or from a path given in the settings (``--smart-turn-model``).

Input, as upstream prepares it (pipecat ``src/pipecat/audio/turn/smart_turn/local_smart_turn_v3.py``,
``_predict_endpoint``): 16 kHz mono float, the last 8 s (zero-padded at the start when shorter), Whisper
log-mel features of 80 bins x 800 frames (``_whisper_features.py``: waveform normalized to zero mean and unit
variance, periodic Hann window of 400, hop 160, Slaney mel filters, log10 clamped to max - 8, then (x + 4) / 4,
the last frame dropped), input ``input_features`` of shape (1, 80, 800); the output is the probability that the
turn is complete (> 0.5: complete).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from media.package_data import package_file

logger = logging.getLogger(__name__)

RATE = 16_000
WINDOW_S = 8
N_FFT = 400
HOP = 160
N_MELS = 80
BUNDLED = ("audio", "turn", "smart_turn", "data", "smart-turn-v3.2-cpu.onnx")


class SmartTurnModelError(RuntimeError):
    """The Smart Turn model is missing or cannot be loaded."""


def smart_turn_model_path(given: Path | None = None) -> Path:
    """The model file: ``given``, or the one inside an installed ``pipecat-ai``."""
    if given is not None:
        if not given.is_file():
            raise SmartTurnModelError(f"Smart Turn model not found: {given}")
        return given
    try:
        return package_file("pipecat", *BUNDLED)
    except FileNotFoundError as exc:
        raise SmartTurnModelError(
            "--turn-detector smart-turn needs the Smart Turn v3 ONNX file: give --smart-turn-model PATH "
            "(smart-turn-v3.2-cpu.onnx from the pipecat-ai wheel) or install pipecat-ai"
        ) from exc


def _hz_to_mel(freq: np.ndarray) -> np.ndarray:
    """Slaney mel scale (linear below 1 kHz, logarithmic above)."""
    mels = 3.0 * freq / 200.0
    log_region = freq >= 1000.0
    mels[log_region] = 15.0 + np.log(freq[log_region] / 1000.0) * (27.0 / np.log(6.4))
    return mels


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    freq = 200.0 * mels / 3.0
    log_region = mels >= 15.0
    freq[log_region] = 1000.0 * np.exp(np.log(6.4) / 27.0 * (mels[log_region] - 15.0))
    return freq


def _mel_filters() -> np.ndarray:
    """(N_FFT // 2 + 1, N_MELS) Slaney-normalized triangular filters from 0 Hz to 8 kHz."""
    mel_points = np.linspace(_hz_to_mel(np.array([0.0]))[0], _hz_to_mel(np.array([RATE / 2]))[0], N_MELS + 2)
    filter_freqs = _mel_to_hz(mel_points)
    fft_freqs = np.linspace(0, RATE // 2, N_FFT // 2 + 1)
    diff = np.diff(filter_freqs)
    slopes = filter_freqs[None, :] - fft_freqs[:, None]
    down = -slopes[:, :-2] / diff[:-1]
    up = slopes[:, 2:] / diff[1:]
    filters = np.maximum(0.0, np.minimum(down, up))
    return filters * (2.0 / (filter_freqs[2 : N_MELS + 2] - filter_freqs[:N_MELS]))[None, :]


_FILTERS = _mel_filters()
_WINDOW = np.hanning(N_FFT + 1)[:-1]  # periodic Hann, as torch.hann_window


def log_mel_features(audio: np.ndarray) -> np.ndarray:
    """(80, 800) float32 Whisper log-mel features of the last 8 s of 16 kHz ``audio``."""
    samples = RATE * WINDOW_S
    x = np.asarray(audio, dtype=np.float32)[-samples:]
    x = np.pad(x, (samples - x.size, 0))  # shorter turns: silence before them
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    padded = np.pad(x.astype(np.float64), (N_FFT // 2, N_FFT // 2), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    power = np.abs(np.fft.rfft(frames * _WINDOW, axis=-1)) ** 2  # (frames, bins)
    log_spec = np.log10(np.maximum(1e-10, _FILTERS.T @ power.T))[:, :-1]
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).astype(np.float32)


class SmartTurnModel:
    """Probability that a turn is complete, from its audio (blocking: call it off the event loop)."""

    def __init__(self, model_path: Path | None = None, threads: int = 1) -> None:
        self.path = smart_turn_model_path(model_path)
        self.threads = threads
        self._session: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.inter_op_num_threads = 1
            options.intra_op_num_threads = self.threads
            try:
                self._session = onnxruntime.InferenceSession(
                    str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
                )
            except Exception as exc:  # onnxruntime raises its own exception types
                raise SmartTurnModelError(f"cannot load the Smart Turn model {self.path}: {exc}") from exc
            logger.info("Smart Turn model loaded from %s", self.path)

    def completion(self, audio: np.ndarray) -> float:
        self.load()
        features = log_mel_features(audio)[None, :, :]
        outputs = self._session.run(None, {"input_features": features})
        return float(np.asarray(outputs[0]).reshape(-1)[0])
