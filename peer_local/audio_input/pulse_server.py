"""The PulseAudio/PipeWire sound server through ``pactl``: its sinks.

PortAudio reaches that server through one ALSA device named ``pulse`` and lists none of its sinks; the ALSA
plugin picks one from PULSE_SINK when a stream opens. These helpers tell which names exist, so the right one
can be set. (The meeting's audio, a sink's monitor, is recorded through SoundCard: see meeting_audio.py.)
"""

from __future__ import annotations

import os
import shutil
import subprocess

PULSE_DEVICE = "pulse"


def _pactl(*args: str) -> str | None:
    pactl = shutil.which("pactl")
    if pactl is None:
        return None
    try:
        env = {**os.environ, "LC_ALL": "C"}  # "Default Sink:" is translated otherwise
        return subprocess.run([pactl, *args], capture_output=True, text=True, timeout=5, check=True, env=env).stdout
    except (subprocess.SubprocessError, OSError):
        return None


def pulse_sinks() -> list[str] | None:
    """Sink names of the sound server, or None without one (or without pactl)."""
    listing = _pactl("list", "short", "sinks")
    if listing is None:
        return None
    return [line.split("\t")[1] for line in listing.splitlines() if "\t" in line]
