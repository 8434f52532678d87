"""``avatar bench turn``: transcript in -> first audio frame out, over 10 turns, with each stage beside it.

In the same run, the baseline: a naive chain of the same models called one after another in this process, with
nothing else running (benchmarks/naive_chain.py: the LLM streamed to the end of its first sentence, then the TTS's
first block of that sentence), so the product's figure is reported as a ratio to what its own models need.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from benchmarks.naive_chain import NaiveChain
from media.clock import MediaClock
from media.measure import summary_ms
from media.protocol import DataMessage, Transcript
from media.stream import AVStream
from peer_remote.avatar_producer import AvatarProducer
from peer_remote.backends import build_face, build_llm, build_persona, build_tts
from peer_remote.conversation import Conversation
from peer_remote.llm.base import LanguageModel
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


async def run_turn_bench(settings: RemoteSettings, turns: int = 10) -> dict[str, Any]:
    clock = MediaClock()
    producer = AvatarProducer(build_face(settings, settings.width, settings.height))
    stream = AVStream(producer, clock, settings.fps, settings.lookahead_s)
    llm = build_llm(settings)
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
            await responder.on_transcript(Transcript(turn_id=f"bench-{i}", text=question, language="en"))
            async with asyncio.timeout(120):
                await responder.turn_finished.wait()
    finally:
        await responder.close()
        for task in drains:
            task.cancel()
        await stream.stop()
    values = [t.values() for t in responder.timelines]
    naive = await naive_chain_ms(settings, llm, responder.tts, turns)
    product = summary_ms([v["first_audio_frame_sent_ms"] for v in values if "first_audio_frame_sent_ms" in v])
    baseline = summary_ms(naive)
    result: dict[str, Any] = {
        "bench": "turn",
        "turns": len(values),
        "llm": llm.name,
        "tts": responder.tts.name,
        "face": producer.face.name,
        "transcript_to_first_audio_ms": product,
        "stages_ms": {stage: summary_ms([v[stage] for v in values if stage in v]) for stage in STAGES},
        "naive_chain_ms": baseline,
        "ratio_to_naive_chain_p50": ratio(product["p50"], baseline["p50"]),
        "per_turn": values,
        "naive_chain_per_turn_ms": naive,
    }
    return result


def ratio(product: float | None, baseline: float | None) -> float | None:
    return round(product / baseline, 2) if product is not None and baseline else None


async def naive_chain_ms(settings: RemoteSettings, llm: LanguageModel, tts: Synthesizer, turns: int) -> list[float]:
    """Per question: ms from the question to the TTS's first block of the LLM's first sentence (a fresh
    conversation each time: the persona and the question)."""
    chain = NaiveChain(
        llm,
        tts,
        build_persona(settings, llm.name),
        settings.context_tokens,
        settings.max_tokens,
        settings.temperature,
    )
    figures = [await chain.reply_ms(QUESTIONS[i % len(QUESTIONS)]) for i in range(turns)]
    return [ms for ms in figures if ms is not None]


def print_turn_table(result: dict[str, Any]) -> None:
    print(f"{result['turns']} turns: {result['llm']} -> {result['tts']} -> {result['face']}")
    rows = [("transcript -> first audio frame", result["transcript_to_first_audio_ms"])]
    rows.append(("naive chain (same models, one after another)", result["naive_chain_ms"]))
    rows += [
        (f"  {name.removesuffix('_ms').replace('_', ' ')}", summary) for name, summary in result["stages_ms"].items()
    ]
    width = max(len(name) for name, _ in rows)
    print(f"{'stage (ms after transcript)':<{width}}  p50     p95")
    for name, summary in rows:
        if summary["count"]:
            print(f"{name:<{width}}  {summary['p50']:<7.0f} {summary['p95']:.0f}")
    if result["ratio_to_naive_chain_p50"] is not None:
        print(f"product / naive chain (p50): {result['ratio_to_naive_chain_p50']:.2f}x")
