"""``avatar bench turn``: transcript in -> first audio frame out, over 10 turns, with each stage beside it.

In the same run, the baselines: chains of the same models (the product's loaded LLM and TTS) called one after another
in this process with nothing else running (benchmarks/naive_chain.py): the naive chain as issue 22 defines it (the
LLM streamed to the end of its first sentence, then the TTS's first block of that sentence), the same chain cut where
the product cuts its first clause, and the naive chain given the product's own prompts; the product's figure is
reported as a ratio to each. Each question is asked of the product and then of the chains, one after the other.
Between questions the bench waits, as a person's next question would take a second to say, until the avatar is
idle again (it evaluates the next user turn's start after each answer).
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
from peer_remote.chunking import ChunkingSettings
from peer_remote.conversation import Conversation
from peer_remote.llm.base import ChatMessage, LanguageModel
from peer_remote.responder import ReplySettings, Responder
from peer_remote.settings import RemoteSettings

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


class StreamSink:
    """Stands in for the RTP senders: while started, the stream renders and its tracks are pulled at their pace;
    stopped, nothing of it runs (the chains' turns: nothing else running)."""

    def __init__(self, stream: AVStream) -> None:
        self.stream = stream
        self._tracks: list[Any] = []
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self.stream.start()
        self._tracks = list(self.stream.subscribe())
        self._tasks = [asyncio.create_task(_drain(track)) for track in self._tracks]

    async def stop(self) -> None:
        for track in self._tracks:
            track.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tracks, self._tasks = [], []
        await self.stream.scheduler.stop()


async def _warmed(responder: Responder) -> None:
    """Until the avatar has evaluated the next user turn's start (as it does after every answer while a person's
    next question takes a second or more to say); at most 5 s."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(5):
            await responder.context_warmed.wait()


async def run_turn_bench(settings: RemoteSettings, turns: int = 10) -> dict[str, Any]:
    """Per question: the product's turn (the stream running), then with the stream stopped the chains of the same
    models for the same question (interleaved, so that a slower minute of the machine weighs on both), then the
    product's context evaluated again (the chains left other prompts in the model's cache)."""
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
    sentence_chain = NaiveChain.for_settings(settings, llm.llm, responder.tts)
    clause_chain = NaiveChain.for_settings(settings, llm.llm, responder.tts, ChunkingSettings())
    chains: dict[str, list[dict[str, float]]] = {"naive": [], "clause": [], "same_prompt": []}
    sink = StreamSink(stream)
    try:
        for i in range(turns):
            question = QUESTIONS[i % len(QUESTIONS)]
            sink.start()
            responder.context_warmed.clear()
            await responder.on_transcript(Transcript(turn_id=f"bench-{i}", text=question, language="en"))
            async with asyncio.timeout(120):
                await responder.turn_finished.wait()
            await _warmed(responder)
            await sink.stop()
            prompt = llm.prompts[-1]
            await sentence_chain.warm([*prompt[:-1], ChatMessage(prompt[-1].role, "")])  # untimed, as the product's
            if (stages := await sentence_chain.prompt_stages(prompt)) is not None:
                chains["same_prompt"].append(stages)
            for name, chain in (("naive", sentence_chain), ("clause", clause_chain)):
                if (stages := await chain.reply_stages(question)) is not None:
                    chains[name].append(stages)
            responder.warm_context("en")
            await _warmed(responder)
    finally:
        await responder.close()
        await sink.stop()
        await stream.stop()
    values = [t.values() for t in responder.timelines]
    product = summary_ms([v["first_audio_frame_sent_ms"] for v in values if "first_audio_frame_sent_ms" in v])
    result: dict[str, Any] = {
        "bench": "turn",
        "turns": len(values),
        "llm": llm.name,
        "tts": responder.tts.name,
        "face": producer.face.name,
        "transcript_to_first_audio_ms": product,
        "stages_ms": {stage: summary_ms([v[stage] for v in values if stage in v]) for stage in STAGES},
        "first_chunk": [t.first_chunk for t in responder.timelines],
    }
    for name, figures in chains.items():
        summary = summary_ms([s["tts_first_audio_ms"] for s in figures])
        result[f"{name}_chain_ms"] = summary
        result[f"{name}_chain_stages_ms"] = {
            stage: summary_ms([s[stage] for s in figures if stage in s]) for stage in NAIVE_STAGES
        }
        result[f"{name}_chain_first_chunk_chars"] = summary_ms([s["first_chunk_chars"] for s in figures])
        result[f"ratio_to_{name}_chain_p50"] = ratio(product["p50"], summary["p50"])
        result[f"{name}_chain_per_turn_ms"] = [s["tts_first_audio_ms"] for s in figures]
    result["per_turn"] = values
    return result


def ratio(product: float | None, baseline: float | None) -> float | None:
    return round(product / baseline, 2) if product is not None and baseline else None


CHAIN_ROWS = (
    ("naive", "naive chain (to its first sentence's end)"),
    ("clause", "the chain cut at the product's first clause"),
    ("same_prompt", "the chain given the product's prompts"),
)


def print_turn_table(result: dict[str, Any]) -> None:
    print(f"{result['turns']} turns: {result['llm']} -> {result['tts']} -> {result['face']}")
    rows = [("transcript -> first audio frame", result["transcript_to_first_audio_ms"])]
    rows += [(label, result[f"{name}_chain_ms"]) for name, label in CHAIN_ROWS if f"{name}_chain_ms" in result]
    rows += [
        (f"  {name.removesuffix('_ms').replace('_', ' ')}", summary) for name, summary in result["stages_ms"].items()
    ]
    for name, _ in CHAIN_ROWS[:2]:
        rows += [
            (f"  {name} chain: {stage.removesuffix('_ms').replace('_', ' ')}", summary)
            for stage, summary in result.get(f"{name}_chain_stages_ms", {}).items()
        ]
    width = max(len(name) for name, _ in rows)
    print(f"{'stage (ms after transcript)':<{width}}  p50     p95")
    for name, summary in rows:
        if summary["count"]:
            print(f"{name:<{width}}  {summary['p50']:<7.0f} {summary['p95']:.0f}")
    chunks = [c for c in result.get("first_chunk", []) if c]
    if chunks:
        lengths = sorted(len(c) for c in chunks)
        chars = ", ".join(
            f"{name.replace('_', ' ')} chain {result[f'{name}_chain_first_chunk_chars']['p50'] or 0:.0f}"
            for name, _ in CHAIN_ROWS
            if f"{name}_chain_first_chunk_chars" in result
        )
        print(f"first clause, characters p50: product {lengths[len(lengths) // 2]}, {chars}")
    for name, label in CHAIN_ROWS:
        if result.get(f"ratio_to_{name}_chain_p50") is not None:
            print(f"product / {label.split(' (')[0]} (p50): {result[f'ratio_to_{name}_chain_p50']:.2f}x")
