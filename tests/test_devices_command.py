"""``avatar devices`` reports what the machine has, and the fix for what it lacks; on Linux the meeting's audio
(``--input loopback``) and the virtual microphone are the sound server's, reached through ALSA's pulse device,
checked here against a private PulseAudio."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from peer_local.bench.speech import write_wav

ROOT = Path(__file__).resolve().parent.parent

LISTEN = """
import asyncio, numpy as np
from peer_local.audio_input import open_audio_source
async def main():
    source = open_audio_source("loopback")
    print(source.name, flush=True)
    heard, peaks = 0, []
    async for chunk in source.chunks():
        if not heard:
            print("listening", flush=True)
        heard += chunk.samples.size
        peaks.append(float(np.abs(chunk.samples).max()))
        if heard >= 16_000 * 4:
            break
    await source.close()
    print(max(peaks), flush=True)
asyncio.run(main())
"""


def pactl(env: dict[str, str], *args: str) -> str:
    return subprocess.run(["pactl", *args], env=env, check=True, capture_output=True, text=True, timeout=10).stdout


@pytest.fixture
def speakers(pulseaudio: dict[str, str]) -> dict[str, str]:
    """A second null sink as the default sink: where the meeting app plays the other people."""
    pactl(pulseaudio, "load-module", "module-null-sink", "sink_name=speakers")
    pactl(pulseaudio, "set-default-sink", "speakers")
    return {**pulseaudio, "PYTHONPATH": str(ROOT)}


def devices_report(env: dict[str, str] | None = None) -> dict:  # type: ignore[type-arg]
    result = subprocess.run(
        [sys.executable, "-m", "peer_local.cli", "devices", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_devices_lists_audio_and_says_how_to_get_a_virtual_camera_and_mic() -> None:
    report = devices_report()
    assert isinstance(report["devices"], list)
    camera = report["virtual_camera"]
    assert isinstance(camera["available"], bool)
    if not camera["available"]:
        assert "v4l2loopback" in camera["detail"] or "OBS" in camera["detail"]
    mic = report["virtual_microphone"]
    assert mic["default"] in ("avatar_mic", "CABLE Input (VB-Audio Virtual Cable)")
    if not mic["found"]:
        assert "null-sink" in mic["fix"] or "VB-Audio" in mic["fix"]


def test_devices_text_output_names_both_sinks_and_the_meeting_audio() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "peer_local.cli", "devices"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert "Virtual microphone" in result.stdout and "Virtual camera" in result.stdout
    assert "Meeting audio (--input loopback)" in result.stdout


def test_with_a_sound_server_the_null_sink_and_the_default_sinks_monitor_are_found(speakers: dict[str, str]) -> None:
    report = devices_report(speakers)
    assert report["virtual_microphone"]["found"] is True  # avatar_mic exists on the server
    assert report["meeting_audio"] == {
        "input": "loopback",
        "found": True,
        "device": "Monitor of speakers",
        "fix": None,
    }


def test_loopback_hears_what_the_computer_plays(speakers: dict[str, str], tmp_path: Path) -> None:
    t = np.arange(48_000) / 48_000
    tone = write_wav(tmp_path / "tone.wav", (np.sin(2 * np.pi * 440 * t) * 16_000).astype(np.int16), 48_000)
    listening = subprocess.Popen(
        [sys.executable, "-c", LISTEN], env=speakers, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert listening.stdout is not None
        assert listening.stdout.readline().strip() == "loopback:Monitor of speakers"
        assert listening.stdout.readline().strip() == "listening"
        subprocess.run(["paplay", "--device=speakers", str(tone)], env=speakers, check=True, timeout=30)
        out, err = listening.communicate(timeout=30)
    finally:
        listening.kill()
    assert listening.returncode == 0, err
    assert float(out.strip()) > 0.2  # the tone came through (it peaks at 0.49)


def test_loopback_refuses_the_clones_own_output(pulseaudio: dict[str, str]) -> None:
    """With avatar_mic as the only (default) sink, listening to its monitor would make the clone hear itself."""
    script = (
        "from peer_local.audio_input.devices import resolve_loopback_device\n"
        "from peer_local.audio_input.base import AudioInputError\n"
        "try:\n    print(resolve_loopback_device().name)\n"
        "except AudioInputError as exc:\n    print('refused:', exc)\n"
    )
    env = {**pulseaudio, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert result.stdout.startswith("refused: no loopback (monitor) input found"), result.stdout + result.stderr
