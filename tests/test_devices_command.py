"""``avatar devices`` reports what the machine has, and the fix for what it lacks; on Linux the meeting's audio
(``--input loopback``: SoundCard's recording of the default sink's monitor, the same code as Windows' WASAPI
loopback) and the virtual microphone (ALSA's pulse device) are the sound server's, checked here against a
private PulseAudio. ``--check`` opens them as a call would."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.harness.speech import write_wav

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
    pactl(
        pulseaudio,
        "load-module",
        "module-null-sink",
        "sink_name=speakers",
        "sink_properties=device.description=Speakers",
    )
    pactl(pulseaudio, "set-default-sink", "speakers")
    return {**pulseaudio, "PYTHONPATH": str(ROOT)}


def devices_report(env: dict[str, str] | None = None) -> dict:  # type: ignore[type-arg]
    result = subprocess.run(
        [sys.executable, "-m", "avatar", "devices", "--json"],
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
    result = subprocess.run([sys.executable, "-m", "avatar", "devices"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "Virtual microphone" in result.stdout and "Virtual camera" in result.stdout
    assert "Meeting audio (--input loopback)" in result.stdout


def test_with_a_sound_server_the_null_sink_and_the_default_sinks_monitor_are_found(speakers: dict[str, str]) -> None:
    report = devices_report(speakers)
    assert report["virtual_microphone"]["found"] is True  # avatar_mic exists on the server
    assert report["meeting_audio"] == {
        "input": "loopback",
        "found": True,
        "device": "Monitor of Speakers",
        "kind": "loopback",
        "fix": None,
    }


def tone_wav(path: Path, seconds: int) -> Path:
    """A 440 Hz tone at half scale, 48 kHz, for the computer to play."""
    t = np.arange(48_000 * seconds) / 48_000
    return write_wav(path, (np.sin(2 * np.pi * 440 * t) * 16_000).astype(np.int16), 48_000)


def test_loopback_hears_what_the_computer_plays(speakers: dict[str, str], tmp_path: Path) -> None:
    tone = tone_wav(tmp_path / "tone.wav", seconds=1)
    listening = subprocess.Popen(
        [sys.executable, "-c", LISTEN], env=speakers, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert listening.stdout is not None
        assert listening.stdout.readline().strip() == "loopback:Monitor of Speakers"
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
        "from peer_local.audio_input import open_audio_source, AudioInputError\n"
        "try:\n    print(open_audio_source('loopback').name)\n"
        "except AudioInputError as exc:\n    print('refused:', exc)\n"
    )
    env = {**pulseaudio, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert result.stdout.startswith("refused: the default output is the clone's own virtual cable"), (
        result.stdout + result.stderr
    )
    assert "set-default-sink" in result.stdout  # the fix


FOLLOW = """
import asyncio, numpy as np
from peer_local.audio_input import open_audio_source
async def main():
    source = open_audio_source("loopback")
    source.follow_poll_s = 0.2
    print(source.name, flush=True)
    announced, loud = False, 0
    async for chunk in source.chunks():
        if source.switches and not announced:
            print(source.name, flush=True)
            announced = True
        if announced and float(np.abs(chunk.samples).max()) > 0.2:
            loud += 1
            if loud >= 10:
                break
    await source.close()
    print("heard the headset", flush=True)
asyncio.run(main())
"""


def test_loopback_follows_the_default_output_when_a_headset_becomes_it(
    speakers: dict[str, str], tmp_path: Path
) -> None:
    pactl(
        speakers, "load-module", "module-null-sink", "sink_name=headset", "sink_properties=device.description=Headset"
    )
    tone = tone_wav(tmp_path / "tone.wav", seconds=3)
    listening = subprocess.Popen(
        [sys.executable, "-c", FOLLOW], env=speakers, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert listening.stdout is not None
        assert listening.stdout.readline().strip() == "loopback:Monitor of Speakers"
        pactl(speakers, "set-default-sink", "headset")  # the headset is plugged in: Windows/Pulse switch to it
        assert listening.stdout.readline().strip() == "loopback:Monitor of Headset"
        subprocess.run(["paplay", "--device=headset", str(tone)], env=speakers, check=True, timeout=30)
        out, err = listening.communicate(timeout=30)
    finally:
        listening.kill()
    assert listening.returncode == 0, err
    assert out.strip() == "heard the headset"


DEFAULT_INPUT = """
import asyncio, numpy as np, sounddevice as sd
from peer_local.audio_input.devices import list_devices, resolve_input_device
from peer_local.audio_input import open_audio_source
devices = list_devices()
print([d.name for d in devices if d.max_input_channels], sd.query_devices(kind="input")["name"], flush=True)
print(resolve_input_device(None).name, flush=True)
async def main():
    source = open_audio_source("mic")
    peaks = []
    async for chunk in source.chunks():
        peaks.append(float(np.abs(chunk.samples).max()))
        if len(peaks) >= 50:
            break
    await source.close()
    print(max(peaks[10:]), flush=True)
asyncio.run(main())
"""


def test_the_default_input_is_portaudios_default_and_hears_the_servers_default_source(
    pulseaudio: dict[str, str],
) -> None:
    """``sd.default.device`` is an input/output pair, not a list: the old check fell back to the first input."""
    pactl(pulseaudio, "load-module", "module-sine-source", "source_name=voice", "frequency=440")
    pactl(pulseaudio, "set-default-source", "voice")
    env = {**pulseaudio, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", DEFAULT_INPUT], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    listed, chosen, peak = result.stdout.strip().splitlines()
    inputs, default = listed.rsplit("] ", 1)
    assert chosen == default  # PortAudio's default input ("default"), not the first listed ("pulse")
    assert inputs.startswith("['pulse', 'default'")
    assert float(peak) > 0.05  # the sine of the server's default source came through


def check_report(env: dict[str, str]) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = subprocess.run(
        [sys.executable, "-m", "avatar", "devices", "--check", "--json"],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
    )
    return result.returncode, json.loads(result.stdout)


def test_check_opens_the_meeting_audio_and_the_virtual_mic_and_names_host_api_rate_and_latency(
    speakers: dict[str, str], tmp_path: Path
) -> None:
    code, report = check_report({**speakers, "XDG_RUNTIME_DIR": str(tmp_path)})
    assert report["meeting_audio"]["ok"] is True
    assert report["meeting_audio"]["detail"] == "loopback of the default output 'Speakers'"
    mic = report["virtual_microphone"]
    assert mic["ok"] is True and mic["fix"] is None
    assert re.fullmatch(r"pulse \(ALSA\), 48000 Hz, output latency \d+ ms", mic["detail"]), mic["detail"]
    camera = report["virtual_camera"]
    if camera["ok"]:  # a machine with v4l2loopback
        assert code == 0 and report["ready"] is True
    else:
        assert "v4l2loopback" in camera["fix"]
        assert code == 1 and report["ready"] is False  # something required is missing: non-zero exit


def test_check_says_what_is_missing_with_the_fix_and_exits_non_zero(pulseaudio: dict[str, str], tmp_path: Path) -> None:
    pactl(pulseaudio, "unload-module", "module-null-sink")  # no avatar_mic; the only sink left: none
    env = {**pulseaudio, "PYTHONPATH": str(ROOT), "XDG_RUNTIME_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "avatar", "devices", "--check"],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    mic = next(line for line in lines if line.startswith("[MISSING] Virtual microphone (avatar_mic)"))
    assert "module-null-sink sink_name=avatar_mic" in mic
    meeting = next(line for line in lines if "Meeting audio" in line)
    assert meeting.startswith("[MISSING]") and "Fix:" in meeting
    assert lines[-1].endswith("missing: fix them before a call.")
