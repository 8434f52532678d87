"""Smoke test for a real Fish Speech server (run it on the GPU box, next to the server).

    uv run python container/smoke_fish_speech.py --url http://127.0.0.1:8080 \
        --reference /data/profile/voice.wav [--text "Hello from my clone."] [--out smoke.wav]

Checks health (POST /v1/health), streams one sentence through the same client the avatar uses (msgpack request with
the reference clip and its transcript; a WAV stream back, its header read and 44.1 kHz PCM kept), prints time to first audio, total time and
real-time factor, and writes the audio resampled to 48 kHz as the avatar would send it. Exit code 0 on success.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import wave
from pathlib import Path

import numpy as np

from media.resample import Resampler48k
from peer_remote.tts.base import TtsError
from peer_remote.tts.fish import FishReference, FishSpeechSynthesizer


async def smoke(url: str, reference: Path | None, text: str, out: Path) -> int:
    ref = FishReference.from_files(reference, reference.with_suffix(".txt")) if reference else None
    client = FishSpeechSynthesizer(url, ref)
    try:
        await client.load()
        resampler = Resampler48k(client.sample_rate)
        started = time.perf_counter()
        first = None
        parts = []
        async for block in client.synthesize(text):
            first = first or time.perf_counter() - started
            parts.append(resampler.convert(block))
        total = time.perf_counter() - started
    finally:
        await client.close()
    audio = np.concatenate([*parts, resampler.flush()]) if parts else np.zeros(0, dtype=np.int16)
    seconds = audio.size / 48_000
    if seconds < 0.3 or np.abs(audio).max() < 1_000:
        print(f"FAIL: {seconds:.2f} s of audio, peak {int(np.abs(audio).max()) if audio.size else 0}")
        return 1
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48_000)
        w.writeframes(audio.astype("<i2").tobytes())
    print(
        f"OK: first audio {1000 * (first or total):.0f} ms, total {1000 * total:.0f} ms, "
        f"{seconds:.2f} s of speech (RTF {total / seconds:.2f}); wrote {out}"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="Fish Speech API server")
    parser.add_argument("--reference", type=Path, help="reference clip (its transcript in a .txt beside it)")
    parser.add_argument("--text", default="Hello, this is a quick test of my cloned voice.", help="what to say")
    parser.add_argument("--out", type=Path, default=Path("fish-smoke.wav"), help="where to write the audio")
    args = parser.parse_args()
    try:
        return asyncio.run(smoke(args.url, args.reference, args.text, args.out))
    except TtsError as exc:
        print(f"FAIL: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
