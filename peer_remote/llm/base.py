"""The LLM interface: given the conversation, stream text deltas; stopping the iteration cancels."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol


class LlmError(RuntimeError):
    """The model is missing, failed to load, or its server answered with an error."""


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["system", "user", "assistant"]
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


class LanguageModel(Protocol):
    name: str

    async def load(self) -> None:
        """Load weights or check the server (once, before the first turn)."""
        ...

    def stream(self, messages: list[ChatMessage], max_tokens: int, temperature: float) -> AsyncIterator[str]:
        """Text deltas of the reply. Closing the iterator (or cancelling its task) stops generation."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes (approximate where the tokenizer is not at hand)."""
        ...

    def pause_generation(self, paused: bool) -> None:
        """Paused, generate nothing ahead of the reader (each token only once the previous one was read and the
        next asked for), so that other work on this machine (the first clause's TTS, while the reader waits for
        it) gets the CPU; resumed, generate ahead. A model served elsewhere ignores it."""
        ...

    async def close(self) -> None:
        """Release what it holds open (a server client's connections); not used afterwards."""
        ...


async def evaluate_prompt(llm: LanguageModel, messages: list[ChatMessage]) -> None:
    """Have ``llm`` evaluate ``messages`` (one token generated and dropped), so that a later prompt sharing their
    prefix finds it in the model's cache; raises :class:`LlmError` as ``stream`` does."""
    stream = llm.stream(messages, 1, 0.0)
    try:
        async for _ in stream:
            break
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
