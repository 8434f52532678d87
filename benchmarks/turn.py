"""``avatar bench turn``: transcript in -> first audio frame out, over 10 turns, with each stage beside it.

In the same run, the baseline: a naive chain of the same models called one after another in this process, with
nothing else running (benchmarks/naive_chain.py: the LLM streamed to the end of its first sentence, then the TTS's
first block of that sentence), so the product's figure is reported as a ratio to what its own models need.
Between turns the bench waits, as a person's next question would take a second to say, until the avatar is idle
again (it evaluates the next user turn's start after each answer).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from benchmarks.naive_chain import NaiveChain
from media.clock import MediaClock
from media.measure import summary_ms
from media.protocol import DataMessage, Transcript
from media.stream import AVStream
from peer_remote.avatar_producer import AvatarProducer
from peer_remote.backends import build_face, build_llm, build_persona, build_tts
from peer_remote.conversation import Conversation
from peer_remote.llm.base import ChatMessage, LanguageModel
from peer_remote.responder import ReplySettings, Responder
from peer_remote.settings import RemoteSettings
from peer_remote.tts.base import Synthesizer

QUESTIONS = [
    "What time is the meeting tomorrow?",
    "Can you send me the report?",
    "How was your weekend?",
    "What do you think about the new design?",
    "Are you joining the call on Friday?",
    "Could you summarise the plan in one sentence?",
    "Who is leading the project?",
    "When will the prototype be ready?",
    "Do you have any questions for us?",
    "Thanks, shall we wrap up?",
]
NAIVE_STAGES = ("llm_first_token_ms", "first_chunk_ready_ms", "tts_first_audio_ms")
STAGES = (
    "llm_first_token_ms",
    "first_chunk_ready_ms",
    "tts_first_audio_ms",
    "first_audio_frame_sent_ms",
    "first_speaking_video_frame_sent_ms",
)


async def _drain(track: Any) -> None:
    """Stand in for an RTP sender: pull frames at the track's pace."""
    with contextlib.suppress(Exception):
        while True:
            await track.recv()


class PromptRecorder:
    """The bench's LLM, noting the prompt of each answer (not the one-token evaluations ahead), so that a chain
    can be given the very prompts the product answered."""

    def __init__(self, llm: LanguageModel) -> None:
        self.llm = llm
        self.name = llm.name
        self.prompts: list[list[ChatMessage]] = []

    async def load(self) -> None:
        await self.llm.load()

    def stream(self, messages: list[ChatMessage], max_tokens: int, temperature: float) -> AsyncIterator[str]:
        if max_tokens > 1:
            self.prompts.append(list(messages))
        return self.llm.stream(messages, max_tokens, temperature)

    def count_tokens(self, text: str) -> int:
        return self.llm.count_tokens(text)

    def pause_generation(self, paused: bool) -> None:
        self.llm.pause_generation(paused)

    async def close(self) -> None:
        await self.llm.close()


async def run_turn_bench(settings: RemoteSettings, turns: int = 10) -> dict[str, Any]:
    clock = MediaClock()
    producer = AvatarProducer(build_face(settings, settings.width, settings.height))
    stream = AVStream(producer, clock, settings.fps, settings.lookahead_s)
    llm = PromptRecorder(build_llm(settings))
    sent: list[DataMessage] = []
    responder = Responder(
        llm,
        build_tts(settings),
        Conversation(build_persona(settings, llm.name), llm.count_tokens, settings.context_tokens),
        producer,
        stream,
        sent.append,
        ReplySettings(settings.max_tokens, settings.temperature),
    )
    await asyncio.get_running_loop().run_in_executor(None, producer.face.prepare)
    await responder.load()
    stream.start()
    audio, video = stream.subscribe()
    drains = [asyncio.create_task(_drain(audio)), asyncio.create_task(_drain(video))]
    try:
        for i in range(turns):
            question = QUESTIONS[i % len(QUESTIONS)]
            responder.context_warmed.clear()
            await responder.on_transcript(Transcript(turn_id=f"bench-{i}", text=question, language="en"))
            async with asyncio.timeout(120):
                await responder.turn_finished.wait()
            # a person's next question takes a second or more to say: the avatar is idle meanwhile and evaluates
            # the next user turn's start ahead (as it does after every answer)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await responder.context_warmed.wait()
    finally:
        await responder.close()
        for task in drains:
            task.cancel()
        await stream.stop()
    values = [t.values() for t in responder.timelines]
    naive_stages = await naive_chain_stages(settings, llm.llm, responder.tts, turns)
    same_prompts = await same_prompt_chain_stages(settings, llm.llm, responder.tts, llm.prompts)
    naive = [s["tts_first_audio_ms"] for s in naive_stages]
    product = summary_ms([v["first_audio_frame_sent_ms"] for v in values if "first_audio_frame_sent_ms" in v])
    baseline = summary_ms(naive)
    same = summary_ms([s["tts_first_audio_ms"] for s in same_prompts])
    result: dict[str, Any] = {
        "bench": "turn",
        "turns": len(values),
        "llm": llm.name,
        "tts": responder.tts.name,
        "face": producer.face.name,
        "transcript_to_first_audio_ms": product,
        "stages_ms": {stage: summary_ms([v[stage] for v in values if stage in v]) for stage in STAGES},
        "naive_chain_ms": baseline,
        "naive_chain_stages_ms": {
            stage: summary_ms([s[stage] for s in naive_stages if stage in s]) for stage in NAIVE_STAGES
        },
        "first_chunk": [t.first_chunk for t in responder.timelines],
        "naive_chain_first_chunk_chars": summary_ms([s["first_chunk_chars"] for s in naive_stages]),
        "ratio_to_naive_chain_p50": ratio(product["p50"], baseline["p50"]),
        "same_prompt_chain_ms": same,
        "same_prompt_chain_stages_ms": {
            stage: summary_ms([s[stage] for s in same_prompts if stage in s]) for stage in NAIVE_STAGES
        },
        "same_prompt_chain_first_chunk_chars": summary_ms([s["first_chunk_chars"] for s in same_prompts]),
        "ratio_to_same_prompt_chain_p50": ratio(product["p50"], same["p50"]),
        "per_turn": values,
        "naive_chain_per_turn_ms": naive,
    }
    return result


def ratio(product: float | None, baseline: float | None) -> float | None:
    return round(product / baseline, 2) if product is not None and baseline else None


async def naive_chain_stages(
    settings: RemoteSettings, llm: LanguageModel, tts: Synthesizer, turns: int
) -> list[dict[str, float]]:
    """Per question: ms from the question to the LLM's first token, the end of its first sentence and the TTS's
    first block of that sentence (a fresh conversation each time: the persona and the question)."""
    chain = NaiveChain.for_settings(settings, llm, tts)
    figures = [await chain.reply_stages(QUESTIONS[i % len(QUESTIONS)]) for i in range(turns)]
    return [stages for stages in figures if stages is not None]


async def same_prompt_chain_stages(
    settings: RemoteSettings, llm: LanguageModel, tts: Synthesizer, prompts: list[list[ChatMessage]]
) -> list[dict[str, float]]:
    """The naive chain given the product's own prompts (its conversation so far, then the question), each with
    its conversation evaluated ahead untimed, as the product's is while nobody asks: the same input, one model
    call after another, so that only the pipeline differs."""
    chain = NaiveChain.for_settings(settings, llm, tts)
    figures: list[dict[str, float]] = []
    for prompt in prompts:
        await chain.warm([*prompt[:-1], ChatMessage(prompt[-1].role, "")])
        if (stages := await chain.prompt_stages(prompt)) is not None:
            figures.append(stages)
    return figures


def print_turn_table(result: dict[str, Any]) -> None:
    print(f"{result['turns']} turns: {result['llm']} -> {result['tts']} -> {result['face']}")
    rows = [("transcript -> first audio frame", result["transcript_to_first_audio_ms"])]
    rows.append(("naive chain (same models, one after another)", result["naive_chain_ms"]))
    if "same_prompt_chain_ms" in result:
        rows.append(("the chain given the product's prompts", result["same_prompt_chain_ms"]))
    rows += [
        (f"  {name.removesuffix('_ms').replace('_', ' ')}", summary) for name, summary in result["stages_ms"].items()
    ]
    rows += [
        (f"  naive: {name.removesuffix('_ms').replace('_', ' ')}", summary)
        for name, summary in result.get("naive_chain_stages_ms", {}).items()
    ]
    width = max(len(name) for name, _ in rows)
    print(f"{'stage (ms after transcript)':<{width}}  p50     p95")
    for name, summary in rows:
        if summary["count"]:
            print(f"{name:<{width}}  {summary['p50']:<7.0f} {summary['p95']:.0f}")
    chunks = [c for c in result.get("first_chunk", []) if c]
    if chunks:
        lengths = sorted(len(c) for c in chunks)
        naive_chars = result["naive_chain_first_chunk_chars"]["p50"]
        same_chars = result.get("same_prompt_chain_first_chunk_chars", {}).get("p50") or 0
        print(
            f"first clause, characters p50: product {lengths[len(lengths) // 2]}, naive chain {naive_chars:.0f}, "
            f"given the product's prompts {same_chars:.0f}"
        )
    if result["ratio_to_naive_chain_p50"] is not None:
        print(f"product / naive chain (p50): {result['ratio_to_naive_chain_p50']:.2f}x")
    if result.get("ratio_to_same_prompt_chain_p50") is not None:
        print(f"product / the chain given its prompts (p50): {result['ratio_to_same_prompt_chain_p50']:.2f}x")
