"""container/smoke_fish_speech.py runs the avatar's Fish client end to end (here against the stand-in for the v1.5.0 server)."""

from __future__ import annotations

import asyncio
import sys
import wave
from pathlib import Path

from tests.fish_speech_stand_in import FishSpeechStandIn

ROOT = Path(__file__).resolve().parent.parent


async def test_fish_smoke_script_reports_ok_and_writes_48khz_audio(tmp_path: Path) -> None:
    server = FishSpeechStandIn()
    await server.start()
    clip = tmp_path / "voice.wav"
    clip.write_bytes(b"RIFF fake")
    (tmp_path / "voice.txt").write_text("How I sound.")
    out = tmp_path / "smoke.wav"
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(ROOT / "container" / "smoke_fish_speech.py"),
            "--url",
            server.url,
            "--reference",
            str(clip),
            "--out",
            str(out),
            stdout=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(60):
            stdout, _ = await process.communicate()
    finally:
        await server.stop()
    assert process.returncode == 0, stdout
    assert stdout.startswith(b"OK: first audio")
    with wave.open(str(out)) as w:
        assert w.getframerate() == 48_000 and w.getnframes() > 48_000
    assert server.requests[0]["references"][0]["text"] == "How I sound."


async def test_fish_smoke_script_fails_clearly_without_a_server(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "container" / "smoke_fish_speech.py"),
        "--url",
        "http://127.0.0.1:9",
        "--out",
        str(tmp_path / "x.wav"),
        stdout=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        stdout, _ = await process.communicate()
    assert process.returncode == 1 and b"FAIL: cannot reach Fish Speech" in stdout
