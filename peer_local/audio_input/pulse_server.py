"""The PulseAudio/PipeWire sound server through ``pactl``: its sinks and its default sink.

PortAudio reaches that server through one ALSA device named ``pulse`` and lists none of its sinks or monitor
sources; the ALSA plugin picks them from PULSE_SINK / PULSE_SOURCE when a stream opens. These helpers tell
which names exist, so the right one can be set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

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


def default_pulse_sink() -> str | None:
    """Where the computer's sound goes (the meeting app plays there), or None without a sound server."""
    info = _pactl("info")
    for line in (info or "").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Default Sink" and value.strip():
            return value.strip()
    return None


@contextmanager
def pulse_source(name: str | None) -> Iterator[None]:
    """PULSE_SOURCE set to ``name`` while a stream opens (the plugin reads it then), and restored after, so
    other inputs of this process (the person's own microphone) keep the server's default."""
    if name is None:
        yield
        return
    previous = os.environ.get("PULSE_SOURCE")
    os.environ["PULSE_SOURCE"] = name
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("PULSE_SOURCE", None)
        else:
            os.environ["PULSE_SOURCE"] = previous
