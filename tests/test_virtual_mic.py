"""The virtual microphone: a real private PulseAudio daemon with an ``avatar_mic`` null sink (started here,
installed by .ci/run); what the sink plays comes out of ``avatar_mic.monitor``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import correlate

from peer_local.audio_input.base import AudioInputError
from peer_local.audio_input.devices import AudioDevice
from peer_local.sinks.virtual_mic import JitterBuffer, find_output_device
from tests.pulse_player import chirp

ROOT = Path(__file__).resolve().parent.parent


def test_an_empty_buffer_plays_silence_and_a_full_one_plays_in_order() -> None:
    buffer = JitterBuffer(target_ms=20)
    assert not buffer.pull(480).any()
    ramp = np.arange(2_000, dtype=np.int16)
    buffer.push(ramp)
    out = np.concatenate([buffer.pull(480) for _ in range(3)])
    assert np.array_equal(out, ramp[:1440])


def test_drift_is_corrected_without_growing_delay_over_an_hour() -> None:
    buffer = JitterBuffer(target_ms=60)
    sent = 0.0
    for block in range(100 * 3600):  # an hour of 10 ms card blocks; the network runs 0.1 % fast
        sent += 480 * 1.001
        while sent >= 960:
            buffer.push(np.ones(960, dtype=np.int16))
            sent -= 960
        buffer.pull(480)
        if block > 1000:
            assert buffer.fill < buffer.target * 2.5
    assert buffer.adjusted > 0 and buffer.dropped == 0


def test_a_missing_output_device_says_how_to_create_one() -> None:
    devices = [AudioDevice(0, "Speakers", "ALSA", 0, 2, 48_000.0)]
    with pytest.raises(
        AudioInputError, match=r"(?s)no output device 'avatar_mic'.*(null-sink|VB-Audio).*--mic-out none.*Speakers"
    ):
        find_output_device("avatar_mic", devices)


def test_the_null_sink_is_created_when_missing(pulseaudio: dict[str, str]) -> None:
    run = {"env": pulseaudio, "capture_output": True, "text": True, "timeout": 10}
    subprocess.run(["pactl", "unload-module", "module-null-sink"], **run)  # type: ignore[call-overload]
    assert "avatar_mic" not in subprocess.run(["pactl", "list", "short", "sinks"], **run).stdout  # type: ignore[call-overload]
    script = "from peer_local.sinks.virtual_mic import ensure_pulse_sink; print(ensure_pulse_sink('avatar_mic'))"
    created = subprocess.run([sys.executable, "-c", script], **run)  # type: ignore[call-overload]
    assert created.stdout.strip() == "True"
    assert "avatar_mic" in subprocess.run(["pactl", "list", "short", "sinks"], **run).stdout  # type: ignore[call-overload]


def test_what_the_sink_plays_comes_out_of_the_null_sink_monitor(pulseaudio: dict[str, str], tmp_path: Path) -> None:
    recording = tmp_path / "monitor.raw"
    with open(recording, "wb") as out:
        recorder = subprocess.Popen(
            ["parec", "--device=avatar_mic.monitor", "--rate=48000", "--channels=1", "--format=s16le"],
            env=pulseaudio,
            stdout=out,
        )
        try:
            player = subprocess.run(
                [sys.executable, str(ROOT / "tests" / "pulse_player.py"), "3"],
                env={**pulseaudio, "PYTHONPATH": str(ROOT)},
                capture_output=True,
                text=True,
                timeout=60,
            )
        finally:
            recorder.terminate()
            recorder.wait(timeout=10)
    assert player.returncode == 0, player.stderr
    heard = np.fromfile(recording, dtype=np.int16).astype(np.float64)
    sent = chirp(3).astype(np.float64)
    assert np.abs(heard).max() > 5_000  # the level came through

    def locate(start_s: float) -> tuple[float, float]:
        segment = sent[int(start_s * 48_000) : int((start_s + 0.2) * 48_000)]
        scores = correlate(heard, segment, mode="valid")
        k = int(np.argmax(np.abs(scores)))
        norm = np.linalg.norm(segment) * np.linalg.norm(heard[k : k + segment.size])
        return k / 48_000, abs(float(scores[k] / norm))  # the polarity may flip on the way; the shape may not

    (at_1, match_1), (at_2, match_2) = locate(1.0), locate(2.0)
    assert match_1 > 0.9 and match_2 > 0.9  # the same waveform, not just noise
    assert at_2 - at_1 == pytest.approx(1.0, abs=0.015)  # no gap, and drift correction stays inaudible


def test_after_an_underrun_the_latency_the_camera_waits_follows_the_voice_at_once(pulseaudio: dict[str, str]) -> None:
    """A stalled loop empties the buffer; the held frames then come at once and play later than before. The
    camera waits as long as the voice takes (``output_latency_s``): it must jump with it, not glide for 200 ms."""
    player = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "pulse_player.py"), "3", "1.5", "0.25"],
        env={**pulseaudio, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert player.returncode == 0, player.stderr
    readings = dict(item.split("=") for item in player.stdout.split() if "=" in item)
    before, soon, later = (float(readings[k]) for k in ("before", "after_100ms", "after_500ms"))
    assert int(readings["underruns"]) >= 1
    assert later - before > 0.05  # the stall moved the voice later
    assert abs(soon - later) < 0.01  # ... and 100 ms after it the camera's wait had already moved as far
