"""``avatar transcribe``: the live VAD + ASR path, run over a file as fast as it decodes."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from avatar.options import add_settings_flags, load_settings
from peer_local.settings import ListeningSettings


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "transcribe",
        help="split a file into turns and transcribe them (the same VAD + ASR as avatar local)",
        description="Run Silero VAD turn detection and faster-whisper over an audio or video file and print each "
        "turn's text, start, end and ASR time.",
    )
    parser.add_argument("file", type=Path, help="audio or video file")
    parser.add_argument("--json", action="store_true", help="print a JSON document instead of a table")
    add_settings_flags(
        parser, ListeningSettings, exclude=("input", "half_duplex", "half_duplex_tail_ms", "early_answer")
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from peer_local.asr import AsrError, FasterWhisperTranscriber
    from peer_local.audio_input import AudioInputError
    from peer_local.audio_input.file_source import FileAudioSource
    from peer_local.listener import HeardTurn, Listener
    from peer_local.vad import VadModelError

    settings = load_settings(ListeningSettings, args, "local")
    if settings is None:
        return 2
    try:
        source = FileAudioSource(args.file, realtime=False)
        transcriber = FasterWhisperTranscriber(settings.asr)
        listener = Listener(source, transcriber, turn_settings=settings.turn_settings())
        if not args.json:
            print(f"loading {transcriber.name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        turns: list[HeardTurn] = asyncio.run(listener.run())
        elapsed = time.perf_counter() - started
    except (AudioInputError, AsrError, VadModelError) as exc:
        print(f"avatar transcribe: {exc}", file=sys.stderr)
        return 1
    if args.json:
        document = {
            "file": str(args.file),
            "model": transcriber.name,
            "turns": [
                {
                    "turn_id": t.turn_id,
                    "text": t.text,
                    "language": t.language,
                    "start_s": round(t.start_s, 3),
                    "end_s": round(t.end_s, 3),
                    "asr_ms": round(t.asr_ms, 1),
                    "silence_wait_ms": round(t.silence_wait_ms, 1),
                }
                for t in turns
            ],
            "elapsed_s": round(elapsed, 3),
        }
        print(json.dumps(document, indent=2))
    else:
        for t in turns:
            print(f"{t.start_s:7.2f}-{t.end_s:7.2f} s  ASR {t.asr_ms:5.0f} ms  {t.text}")
        if not turns:
            print("(no speech found)")
    return 0
