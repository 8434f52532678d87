"""Audio devices through sounddevice (PortAudio): listing, resolving ``mic:NAME|INDEX``, and the Windows host
API rules (WASAPI preferred, MME's names cut to 31 characters, localised endpoint names)."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from peer_local.audio_input.base import AudioInputError

LOOPBACK_HINTS = ("monitor", "loopback", "stereo mix", "what u hear")
VIRTUAL_CABLE_HINTS = ("cable input", "cable output", "vb-audio", "avatar_mic", "null")

WASAPI = "Windows WASAPI"
DIRECTSOUND = "Windows DirectSound"
MME = "MME"
# Windows lists each endpoint once per host API. WASAPI first: shared mode with auto_convert opens any rate at
# the lowest latency; DirectSound adds ~120 ms of PortAudio buffering; MME cuts names to 31 characters.
HOSTAPI_PREFERENCE = (WASAPI, DIRECTSOUND, MME, "Windows WDM-KS")
MME_NAME_LIMIT = 31  # PortAudio's MME devices carry WAVEOUTCAPS.szPname: 32 chars with the terminating NUL


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

    @property
    def looks_like_loopback(self) -> bool:
        return any(h in self.name.lower() for h in LOOPBACK_HINTS)

    @property
    def looks_like_virtual_cable(self) -> bool:
        return any(h in self.name.lower() for h in VIRTUAL_CABLE_HINTS)

    @property
    def is_wasapi(self) -> bool:
        return self.hostapi == WASAPI

    def describe(self) -> str:
        io = f"in {self.max_input_channels}, out {self.max_output_channels}"
        return f"[{self.index}] {self.name} ({self.hostapi}; {io}; {self.default_samplerate:.0f} Hz)"


def devices_from(hostapis: Sequence[dict[str, Any]], raw: Sequence[dict[str, Any]]) -> list[AudioDevice]:
    """``sd.query_hostapis()`` and ``sd.query_devices()`` as :class:`AudioDevice` objects."""
    names = [str(h["name"]) for h in hostapis]
    return [
        AudioDevice(
            index=int(d.get("index", i)),
            name=str(d["name"]),
            hostapi=names[d["hostapi"]] if d["hostapi"] < len(names) else "?",
            max_input_channels=int(d["max_input_channels"]),
            max_output_channels=int(d["max_output_channels"]),
            default_samplerate=float(d["default_samplerate"]),
        )
        for i, d in enumerate(raw)
    ]


def list_devices() -> list[AudioDevice]:
    sd = load_sounddevice()
    try:
        return devices_from(list(sd.query_hostapis()), list(sd.query_devices()))
    except sd.PortAudioError as exc:
        raise AudioInputError(f"cannot list audio devices: {exc}") from exc


def available(devices: list[AudioDevice], kind: str) -> str:
    usable = [d for d in devices if (d.max_input_channels if kind == "input" else d.max_output_channels) > 0]
    if not usable:
        return f"no {kind} devices found"
    return f"available {kind} devices:\n  " + "\n  ".join(d.describe() for d in usable)


def _hardware_part(name: str) -> str:
    """The driver's device name in "Endpoint (Device)": Windows localises the endpoint part ("Lautsprecher",
    "Haut-parleurs"), never the device part ("VB-Audio Virtual Cable", "Realtek(R) Audio")."""
    match = re.search(r"\(([^()]*(?:\([^()]*\)[^()]*)*)\)\s*$", name)
    return match.group(1).strip().lower() if match else ""


def name_match(wanted: str, listed: str) -> int:
    """How well a listed device name matches the wanted one: 4 exact, 3 the same name cut by MME, 2 contains it,
    1 the same hardware under a localised endpoint name, 0 not at all."""
    w, n = wanted.strip().lower(), listed.strip().lower()
    if not w or not n:
        return 0
    if w == n:
        return 4
    if len(listed) == MME_NAME_LIMIT and w.startswith(n):
        return 3
    if w in n:
        return 2
    hardware = _hardware_part(wanted)
    if hardware and hardware == _hardware_part(listed) and ("(" in wanted):
        endpoint = wanted.split("(")[0].strip().lower()
        # "CABLE Input (VB-Audio Virtual Cable)" must not match "CABLE Output (VB-Audio Virtual Cable)"
        return 1 if endpoint and not _is_other_end_of_a_cable(endpoint, n) else 0
    return 0


def _is_other_end_of_a_cable(endpoint: str, listed: str) -> bool:
    return ("input" in endpoint and "output" in listed) or ("output" in endpoint and "input" in listed)


def hostapi_rank(device: AudioDevice) -> int:
    return HOSTAPI_PREFERENCE.index(device.hostapi) if device.hostapi in HOSTAPI_PREFERENCE else len(HOSTAPI_PREFERENCE)


def matching_devices(wanted: str, devices: list[AudioDevice]) -> list[AudioDevice]:
    """Devices whose name matches ``wanted``, the best host API first (WASAPI, DirectSound, MME); a device found
    only by its hardware name (a localised or renamed endpoint) comes after every one found by its own name."""
    scored = [(name_match(wanted, d.name), d) for d in devices]
    ranked = sorted(((s, d) for s, d in scored if s), key=lambda sd: (sd[0] < 2, hostapi_rank(sd[1]), -sd[0]))
    return [d for _, d in ranked]


def wasapi_settings(device: AudioDevice) -> Any:
    """WASAPI shared mode with the system's sample-rate and channel converter (``auto_convert``): without it a
    stream whose rate or channel count differs from the device's mix format fails with "Invalid sample rate"."""
    if not device.is_wasapi:
        return None
    return load_sounddevice().WasapiSettings(auto_convert=True)


def capture_channels(device: AudioDevice) -> int:
    """Channels to open an input with: all of a WASAPI device's (its mix format's count: a 4-channel microphone
    array refuses 2), at most 2 elsewhere (MME, DirectSound and ALSA's pulse device convert; the latter lists 32)."""
    channels = max(1, device.max_input_channels)
    return channels if device.is_wasapi else min(2, channels)


def default_input_index(sd: ModuleType) -> int | None:
    """The default input's index (``sd.default.device`` is an input/output pair, not a list or tuple)."""
    try:
        return int(sd.query_devices(kind="input")["index"])
    except (sd.PortAudioError, ValueError):
        return None


def resolve_input_device(spec: str | None, devices: list[AudioDevice] | None = None) -> AudioDevice:
    """``None``/``""``: the default input; a number: that index; text: the matching input, WASAPI's first."""
    devices = devices if devices is not None else list_devices()
    inputs = [d for d in devices if d.max_input_channels > 0]
    if not spec:
        default = default_input_index(load_sounddevice())
        match = next((d for d in inputs if d.index == default), None)
    elif spec.isdigit():
        match = next((d for d in inputs if d.index == int(spec)), None)
    else:
        match = next(iter(matching_devices(spec, inputs)), None)
    if match is None:
        what = f"input device {spec!r}" if spec else "a default input device"
        raise AudioInputError(f"cannot find {what}; {available(devices, 'input')}")
    return match


def resolve_loopback_device(devices: list[AudioDevice] | None = None) -> AudioDevice:
    """Without SoundCard: a listed input that records what the computer plays (Stereo Mix, a monitor), never a
    virtual cable's own loopback (the clone would hear itself)."""
    devices = devices if devices is not None else list_devices()
    candidates = [
        d for d in devices if d.max_input_channels > 0 and d.looks_like_loopback and not d.looks_like_virtual_cable
    ]
    if not candidates:
        hint = (
            "on Windows meeting audio is recorded through SoundCard's WASAPI loopback (the `local` extra installs it), "
            "or enable 'Stereo Mix'"
            if sys.platform == "win32"
            else "on Linux a PulseAudio/PipeWire server with a default sink other than avatar_mic (pactl info) is "
            "recorded through SoundCard"
        )
        raise AudioInputError(f"no loopback (monitor) input found; {hint}. {available(devices, 'input')}")
    return sorted(candidates, key=hostapi_rank)[0]
