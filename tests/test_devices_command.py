"""``avatar devices`` reports what the machine has, and the fix for what it lacks."""

from __future__ import annotations

import json
import subprocess
import sys


def test_devices_lists_audio_and_says_how_to_get_a_virtual_camera_and_mic() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "peer_local.cli", "devices", "--json"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert isinstance(report["devices"], list)
    camera = report["virtual_camera"]
    assert isinstance(camera["available"], bool)
    if not camera["available"]:
        assert "v4l2loopback" in camera["detail"] or "OBS" in camera["detail"]
    mic = report["virtual_microphone"]
    assert mic["default"] in ("avatar_mic", "CABLE Input (VB-Audio Virtual Cable)")
    if not mic["found"]:
        assert "null-sink" in mic["fix"] or "VB-Audio" in mic["fix"]


def test_devices_text_output_names_both_sinks() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "peer_local.cli", "devices"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert "Virtual microphone" in result.stdout and "Virtual camera" in result.stdout
