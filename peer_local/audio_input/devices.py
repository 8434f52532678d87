"""Audio devices through sounddevice (PortAudio): listing, and resolving ``mic:NAME|INDEX`` and loopback."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from peer_local.audio_input.base import AudioInputError

LOOPBACK_HINTS = ("monitor", "loopback", "stereo mix", "what u hear")
VIRTUAL_CABLE_HINTS = ("cable input", "vb-audio", "avatar_mic", "null")


def load_sounddevice() -> ModuleType:
    """Import sounddevice, turning a missing PortAudio into a clear error."""
    try:
        import sounddevice
    except OSError as exc:  # PortAudio library missing (Linux: apt install libportaudio2)
        raise AudioInputError(
            f"audio devices are unavailable: {exc}. On Debian/Ubuntu install libportaudio2; or use --input FILE"
        ) from exc
    return sounddevice


@dataclass(frozen=True)
class AudioDevice:
    index: int
    name: str
    hostapi: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float
    pulse_source: str | None = None  # reached through the ``pulse`` device: the sound server's source to open

    @property
    def looks_like_loopback(self) -> bool:
        return any(h in self.name.lower() for h in LOOPBACK_HINTS)

    @property
    def looks_like_virtual_cable(self) -> bool:
        return any(h in self.name.lower() for h in VIRTUAL_CABLE_HINTS)

    def describe(self) -> str:
        io = f"in {self.max_input_channels}, out {self.max_output_channels}"
        return f"[{self.index}] {self.name} ({self.hostapi}; {io}; {self.default_samplerate:.0f} Hz)"


def list_devices() -> list[AudioDevice]:
    sd = load_sounddevice()
    try:
        hostapis = [h["name"] for h in sd.query_hostapis()]
        raw: list[dict[str, Any]] = list(sd.query_devices())
    except sd.PortAudioError as exc:
        raise AudioInputError(f"cannot list audio devices: {exc}") from exc
    return [
        AudioDevice(
            index=i,
            name=str(d["name"]),
            hostapi=hostapis[d["hostapi"]] if d["hostapi"] < len(hostapis) else "?",
            max_input_channels=int(d["max_input_channels"]),
            max_output_channels=int(d["max_output_channels"]),
            default_samplerate=float(d["default_samplerate"]),
        )
        for i, d in enumerate(raw)
    ]


def _available(devices: list[AudioDevice], kind: str) -> str:
    usable = [d for d in devices if (d.max_input_channels if kind == "input" else d.max_output_channels) > 0]
    if not usable:
        return f"no {kind} devices found"
    return f"available {kind} devices:\n  " + "\n  ".join(d.describe() for d in usable)


def resolve_input_device(spec: str | None, devices: list[AudioDevice] | None = None) -> AudioDevice:
    """``None``/``""``: the default input; a number: that index; text: the first input whose name contains it."""
    devices = devices if devices is not None else list_devices()
    inputs = [d for d in devices if d.max_input_channels > 0]
    if not spec:
        sd = load_sounddevice()
        default = sd.default.device[0] if isinstance(sd.default.device, list | tuple) else sd.default.device
        match = next((d for d in inputs if d.index == default), inputs[0] if inputs else None)
    elif spec.isdigit():
        match = next((d for d in inputs if d.index == int(spec)), None)
    else:
        match = next((d for d in inputs if spec.lower() in d.name.lower()), None)
    if match is None:
        what = f"input device {spec!r}" if spec else "a default input device"
        raise AudioInputError(f"cannot find {what}; {_available(devices, 'input')}")
    return match


def pulse_monitor_route(devices: list[AudioDevice]) -> AudioDevice | None:
    """Linux: the ``pulse`` input with PULSE_SOURCE set to the default sink's monitor (PortAudio lists no
    monitors), unless that sink is the clone's own ``avatar_mic`` (it would hear itself)."""
    from peer_local.audio_input.pulse_server import PULSE_DEVICE, default_pulse_sink

    pulse = next((d for d in devices if d.name == PULSE_DEVICE and d.max_input_channels > 0), None)
    if pulse is None or not sys.platform.startswith("linux"):
        return None
    sink = default_pulse_sink()
    if sink is None or "avatar_mic" in sink:
        return None
    return AudioDevice(
        pulse.index,
        f"Monitor of {sink}",
        pulse.hostapi,
        pulse.max_input_channels,
        pulse.max_output_channels,
        pulse.default_samplerate,
        pulse_source=f"{sink}.monitor",
    )


def resolve_loopback_device(devices: list[AudioDevice] | None = None) -> AudioDevice:
    """What the computer plays: a monitor source (listed, or the PulseAudio/PipeWire default sink's reached
    through the ``pulse`` device), or a WASAPI loopback/Stereo Mix."""
    devices = devices if devices is not None else list_devices()
    candidates = [
        d for d in devices if d.max_input_channels > 0 and d.looks_like_loopback and "avatar_mic" not in d.name
    ]
    routed = None if candidates else pulse_monitor_route(devices)
    if routed is not None:
        return routed
    if not candidates:
        hint = (
            "on Windows enable 'Stereo Mix' or use a WASAPI loopback device"
            if sys.platform == "win32"
            else "on Linux a PulseAudio/PipeWire server with a default sink other than avatar_mic (pactl info) is "
            "reached through ALSA's pulse plugin (libasound2-plugins)"
        )
        raise AudioInputError(f"no loopback (monitor) input found; {hint}. {_available(devices, 'input')}")
    return candidates[0]
