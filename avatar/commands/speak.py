"""``avatar say`` (TTS alone) and ``avatar chat`` (a text REPL against the LLM and persona)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

from avatar.options import add_settings_flags, load_settings
from peer_remote.settings import SpeakingSettings


def register(subparsers: Any) -> None:
    say: argparse.ArgumentParser = subparsers.add_parser(
        "say",
        help="speak TEXT with the configured TTS into a 48 kHz WAV",
        description="Run the TTS alone (the same voice and resampling as the avatar) and write a 48 kHz mono WAV.",
    )
    say.add_argument("text", help="what to say")
    say.add_argument("--out", type=Path, default=Path("reply.wav"), help="output WAV")
    add_settings_flags(say, SpeakingSettings)
    say.set_defaults(func=run_say)

    chat: argparse.ArgumentParser = subparsers.add_parser(
        "chat",
        help="a text REPL against the avatar's LLM and persona, with timings",
        description="Type a line, get the avatar's reply as it streams, with first-token and total times. "
        "Ctrl-D or an empty line ends it.",
    )
    add_settings_flags(chat, SpeakingSettings)
    chat.set_defaults(func=run_chat)


def run_say(args: argparse.Namespace) -> int:
    from media.frames import AUDIO_RATE
    from media.resample import Resampler48k
    from peer_remote.backends import build_tts
    from peer_remote.tts.base import TtsError

    settings = load_settings(SpeakingSettings, args, "remote")
    if settings is None:
        return 2

    async def speak() -> tuple[np.ndarray, float]:
        tts = build_tts(settings)
        await tts.load()
        started = time.perf_counter()
        resampler = Resampler48k(tts.sample_rate)
        parts = [resampler.convert(block) async for block in tts.synthesize(args.text)]
        parts.append(resampler.flush())
        return np.concatenate(parts), time.perf_counter() - started

    try:
        audio, elapsed = asyncio.run(speak())
    except TtsError as exc:
        print(f"avatar say: {exc}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(args.out), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(AUDIO_RATE)
        out.writeframes(audio.astype("<i2").tobytes())
    print(f"wrote {args.out}: {audio.size / AUDIO_RATE:.2f} s of audio in {elapsed * 1000:.0f} ms")
    return 0


def run_chat(args: argparse.Namespace) -> int:
    from peer_remote.backends import build_llm, build_persona
    from peer_remote.conversation import Conversation
    from peer_remote.llm.base import LlmError

    settings = load_settings(SpeakingSettings, args, "remote")
    if settings is None:
        return 2

    async def repl() -> None:
        llm = build_llm(settings)
        print(f"loading {llm.name} ...", file=sys.stderr, flush=True)
        await llm.load()
        conversation = Conversation(build_persona(settings, llm.name), llm.count_tokens, settings.context_tokens)
        loop = asyncio.get_running_loop()
        while True:
            print("you> ", end="", flush=True)
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line.strip():
                print()
                return
            conversation.add_user(line.strip())
            started = time.perf_counter()
            first = None
            reply: list[str] = []
            print("avatar> ", end="", flush=True)
            async for delta in llm.stream(conversation.messages(), settings.max_tokens, settings.temperature):
                first = first or time.perf_counter() - started
                reply.append(delta)
                print(delta, end="", flush=True)
            total = time.perf_counter() - started
            conversation.add_assistant("".join(reply))
            tokens = llm.count_tokens("".join(reply))
            print(
                f"\n  [first token {1000 * (first or total):.0f} ms, total {1000 * total:.0f} ms, ~{tokens / max(total, 1e-6):.0f} tokens/s]"
            )

    try:
        asyncio.run(repl())
    except LlmError as exc:
        print(f"avatar chat: {exc}", file=sys.stderr)
        return 1
    return 0
