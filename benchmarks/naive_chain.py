"""The baseline the turn and meeting benches report beside the product: the same models called one after another
in this process with nothing else running (issue 22): the LLM streamed to the end of its first sentence, then the
TTS's first block of that sentence; for a spoken turn, before them the end-of-turn silence and the ASR of the turn (faster-whisper's own
``transcribe``, its 30 s window, as any caller of the library gets it; the meeting bench reports the chain with
the product's short-window ASR call beside it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from peer_local.asr.base import AsrResult
from peer_remote.backends import build_persona
from peer_remote.chunking import ChunkingSettings, ClauseChunker
from peer_remote.conversation import Conversation, PersonaPrompt
from peer_remote.llm.base import ChatMessage, LanguageModel, evaluate_prompt
from peer_remote.settings import RemoteSettings
from peer_remote.tts.base import Synthesizer

END_SILENCE_MS = 320.0  # the fixed silence that ends a turn in the naive chain (silence-only detection's default)
_NEVER = 10**9
# the end of the first sentence, as issue 22 defines the chain: no comma, phrase start or length ever ends a chunk
# (the product's first-clause cuts are the product's; the chain had them from 0a083b5 until session 31)
SENTENCES_ONLY = ChunkingSettings(
    first_min_chars=_NEVER, min_chars=_NEVER, first_max_chars=_NEVER, max_chars=_NEVER, first_phrase_words=0
)


@dataclass(frozen=True)
class SpokenTurn:
    """The naive chain's figures for one spoken turn (ms)."""

    text: str
    asr_ms: float
    reply_ms: float
    total_ms: float  # end of speech -> first audio: the silence, the ASR and the reply


@dataclass(frozen=True)
class NaiveChain:
    """The models of one run and the prompt settings the product uses."""

    llm: LanguageModel
    tts: Synthesizer
    persona: PersonaPrompt
    context_tokens: int
    max_tokens: int
    temperature: float
    chunking: ChunkingSettings = field(default=SENTENCES_ONLY)  # where its first chunk ends

    async def reply_ms(self, question: str, language: str | None = "en") -> float | None:
        """ms from the question to the TTS's first block of the reply's first sentence (None: no reply)."""
        stages = await self.reply_stages(question, language)
        return stages.get("tts_first_audio_ms") if stages else None

    async def reply_stages(self, question: str, language: str | None = "en") -> dict[str, float] | None:
        """:meth:`prompt_stages` for a fresh conversation: the persona and ``question``, the persona evaluated ahead
        untimed (as the product's is at load), whatever the model evaluated last."""
        conversation = Conversation(self.persona, self.llm.count_tokens, self.context_tokens)
        await self.warm(conversation.messages(language, pending=True))
        conversation.add_user(question)
        return await self.prompt_stages(conversation.messages(language))

    @classmethod
    def for_settings(
        cls,
        settings: RemoteSettings,
        llm: LanguageModel,
        tts: Synthesizer,
        chunking: ChunkingSettings = SENTENCES_ONLY,
    ) -> NaiveChain:
        """The chain of ``llm`` and ``tts`` with the persona and reply settings the product runs with."""
        return cls(
            llm,
            tts,
            build_persona(settings, llm.name),
            settings.context_tokens,
            settings.max_tokens,
            settings.temperature,
            chunking,
        )

    async def warm(self, messages: list[ChatMessage]) -> None:
        """Have the model evaluate ``messages`` (one token generated and dropped), untimed."""
        await evaluate_prompt(self.llm, messages)

    async def prompt_stages(self, messages: list[ChatMessage]) -> dict[str, float] | None:
        """ms from the prompt ``messages`` to the LLM's first token (``llm_first_token_ms``), the end of the first
        sentence (or chunk, by ``chunking``: ``first_chunk_ready_ms``) and the TTS's first block of it
        (``tts_first_audio_ms``), as the product's turn timeline names them, and ``first_chunk_chars``; None: no
        reply."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        stages: dict[str, float] = {}

        def mark(name: str) -> None:
            stages.setdefault(name, round((loop.time() - start) * 1000, 1))

        chunker = ClauseChunker(self.chunking)
        first: str | None = None
        stream = self.llm.stream(messages, self.max_tokens, self.temperature)
        try:
            async for delta in stream:
                mark("llm_first_token_ms")
                if chunks := chunker.feed(delta):
                    first = chunks[0]
                    break
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
        first = first or next(iter(chunker.flush()), None)
        if first is None:
            return None
        mark("first_chunk_ready_ms")
        synthesis = self.tts.synthesize(first)
        try:
            async for _ in synthesis:
                break
        finally:
            await synthesis.aclose()  # type: ignore[attr-defined]
        mark("tts_first_audio_ms")
        stages["first_chunk_chars"] = float(len(first))
        return stages

    async def spoken_turn_ms(
        self, transcribe: Callable[[np.ndarray], AsrResult], audio: np.ndarray
    ) -> SpokenTurn | None:
        """End of speech -> first audio for a spoken turn (16 kHz ``audio``): the end-of-turn silence, then ASR
        (``transcribe``), then :meth:`reply_ms`. The silence is added, not waited: nothing else runs during it."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        result = await loop.run_in_executor(None, transcribe, audio)
        asr_ms = (loop.time() - start) * 1000
        if not result.text:
            return None
        reply = await self.reply_ms(result.text, result.language)
        if reply is None:
            return None
        return SpokenTurn(result.text, round(asr_ms, 1), reply, round(END_SILENCE_MS + asr_ms + reply, 1))
