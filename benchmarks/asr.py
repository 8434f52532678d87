"""``avatar bench asr``: end-of-turn wait, ASR time, RTF and WER over generated utterances, in real time."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.harness.speech import conversation
from media.measure import summary_ms
from peer_local.asr import FasterWhisperTranscriber, WhisperSettings
from peer_local.asr.wer import word_error_rate
from peer_local.audio_input.file_source import FileAudioSource
from peer_local.listener import Listener
from peer_local.turns import TurnSettings

UTTERANCES = [
    "What time is the meeting with the design team tomorrow?",
    "Please send me the quarterly report before Friday.",
    "Could you tell me more about the new project plan?",
    "I think we should move the launch to next month.",
    "Thank you, that sounds like a very good idea.",
    "How many people are coming to the workshop?",
    "Let's review the budget after lunch.",
    "Can you share your screen with everyone?",
    "The customer asked for a demo next week.",
    "Where did we leave the notes from the last call?",
]


async def run_asr_bench(beam_size: int = 5, end_silence_ms: int = 320) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="avatar-bench-asr-"))
    audio = conversation(workdir / "questions.wav", UTTERANCES, gap_s=1.5)
    transcriber = FasterWhisperTranscriber(WhisperSettings(beam_size=beam_size))
    listener = Listener(
        FileAudioSource(audio, realtime=True),
        transcriber,
        turn_settings=TurnSettings(end_silence_s=end_silence_ms / 1000),
    )
    turns = await listener.run()
    pairs = list(zip(UTTERANCES, turns, strict=False))
    return {
        "bench": "asr",
        "model": transcriber.name,
        "beam_size": beam_size,
        "end_silence_ms": end_silence_ms,
        "utterances": len(UTTERANCES),
        "turns": len(turns),
        "utterance_s": summary_ms([t.audio_s * 1000 for t in turns]),
        "silence_wait_ms": summary_ms([t.silence_wait_ms for t in turns]),
        "asr_ms": summary_ms([t.asr_ms for t in turns]),
        "end_of_speech_to_transcript_ms": summary_ms([(t.asr_done_s - t.end_s) * 1000 for t in turns]),
        "rtf": round(sum(t.asr_ms / 1000 for t in turns) / max(1e-9, sum(t.audio_s for t in turns)), 3),
        "wer": round(word_error_rate(" ".join(UTTERANCES), " ".join(t.text for t in turns)), 3),
        "per_turn": [
            {
                "reference": ref,
                "text": t.text,
                "wer": round(word_error_rate(ref, t.text), 3),
                "asr_ms": round(t.asr_ms, 1),
            }
            for ref, t in pairs
        ],
    }


def print_asr_table(result: dict[str, Any]) -> None:
    def triple(key: str) -> str:
        s = result[key]
        return f"{s['p50']:.0f} / {s['p95']:.0f} / {s['max']:.0f}" if s["count"] else "-"

    rows = [
        ("model / beam", f"{result['model']} / {result['beam_size']}"),
        ("turns found / utterances", f"{result['turns']} / {result['utterances']}"),
        ("end-of-turn silence wait ms p50/p95/max", triple("silence_wait_ms")),
        ("ASR time ms p50/p95/max", triple("asr_ms")),
        ("end of speech -> transcript ms p50/p95/max", triple("end_of_speech_to_transcript_ms")),
        ("RTF", str(result["rtf"])),
        ("WER", str(result["wer"])),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def run(beam_size: int, end_silence_ms: int) -> dict[str, Any]:
    return asyncio.run(run_asr_bench(beam_size, end_silence_ms))
