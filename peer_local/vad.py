"""Streaming Silero VAD on 32 ms chunks, from the ONNX file that ``faster-whisper`` ships (its own VAD filter's).

The model runs with onnxruntime directly, found without importing ``faster_whisper`` (~0.7 s). faster-whisper's
``SileroVADModel`` runs a whole buffer with fresh state on each call; listening needs the LSTM state carried from
one 512-sample chunk to the next, so the session is run here, one chunk at a time (as ``silero_vad``'s own
``OnnxWrapper`` does: the previous chunk's last 64 samples in front of each chunk, 16 kHz only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from media.package_data import package_file

VAD_RATE = 16_000
VAD_CHUNK = 512  # 32 ms
_CONTEXT = 64
_STATE_SHAPE = (1, 1, 128)  # the LSTM's h and c, each


class VadModelError(RuntimeError):
    """The Silero VAD model is missing or cannot be loaded."""


def bundled_vad_model() -> Path:
    """Path of ``faster_whisper/assets/silero_vad_v6.onnx`` without importing the package."""
    try:
        return package_file("faster_whisper", "assets", "silero_vad_v6.onnx")
    except FileNotFoundError as exc:
        raise VadModelError(f"Silero VAD model: {exc}") from exc


class SileroVad:
    """Speech probability for each consecutive 512-sample chunk of 16 kHz audio (stateful)."""

    def __init__(self, model_path: Path | None = None) -> None:
        import onnxruntime

        path = model_path or bundled_vad_model()
        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1
        try:
            self._session = onnxruntime.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise VadModelError(f"cannot load the VAD model {path}: {exc}") from exc
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros((1, _CONTEXT), dtype=np.float32)

    def __call__(self, chunk: np.ndarray) -> float:
        if chunk.shape != (VAD_CHUNK,):
            raise ValueError(f"the VAD takes {VAD_CHUNK} samples at a time, got {chunk.shape}")
        x = np.concatenate([self._context, chunk.astype(np.float32, copy=False)[None, :]], axis=1)
        out, self._h, self._c = self._session.run(None, {"input": x, "h": self._h, "c": self._c})
        self._context = x[:, -_CONTEXT:]
        return float(out.reshape(-1)[0])
