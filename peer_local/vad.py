"""Streaming Silero VAD on 32 ms chunks, from the ONNX file bundled in the ``silero-vad`` package.

The model runs with onnxruntime directly: importing the ``silero_vad`` module would import torch (~1 s)
and set torch to one thread for the whole process.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from media.package_data import package_file

VAD_RATE = 16_000
VAD_CHUNK = 512  # 32 ms
_CONTEXT = 64


class VadModelError(RuntimeError):
    """The Silero VAD model is missing or cannot be loaded."""


def bundled_vad_model() -> Path:
    """Path of ``silero_vad/data/silero_vad.onnx`` without importing the package."""
    try:
        return package_file("silero_vad", "data", "silero_vad.onnx")
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
        self._rate = np.array(VAD_RATE, dtype=np.int64)
        self.reset()

    def reset(self) -> None:
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros((1, _CONTEXT), dtype=np.float32)

    def __call__(self, chunk: np.ndarray) -> float:
        if chunk.shape != (VAD_CHUNK,):
            raise ValueError(f"the VAD takes {VAD_CHUNK} samples at a time, got {chunk.shape}")
        x = np.concatenate([self._context, chunk.astype(np.float32, copy=False)[None, :]], axis=1)
        out, self._state = self._session.run(None, {"input": x, "state": self._state, "sr": self._rate})
        self._context = x[:, -_CONTEXT:]
        return float(out.reshape(-1)[0])
