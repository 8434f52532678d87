"""``--input`` specs: ``mic``, ``mic:NAME|INDEX``, ``loopback``, or a file path."""

from __future__ import annotations

import logging
from pathlib import Path

from peer_local.audio_input.base import AudioInputError, AudioSource
from peer_local.audio_input.device_source import DeviceAudioSource
from peer_local.audio_input.devices import resolve_input_device, resolve_loopback_device
from peer_local.audio_input.file_source import FileAudioSource
from peer_local.audio_input.meeting_audio import LoopbackAudioSource, SoundCardUnavailableError

logger = logging.getLogger(__name__)


def open_loopback() -> AudioSource:
    """The meeting's audio: SoundCard's loopback of the default output (Stereo Mix as its fallback); where
    SoundCard cannot load, a listed Stereo Mix / monitor input through PortAudio."""
    try:
        return LoopbackAudioSource()
    except SoundCardUnavailableError as exc:
        logger.warning("%s; looking for a Stereo Mix or monitor input instead", exc)
    return DeviceAudioSource(resolve_loopback_device(), kind="loopback")


def open_audio_source(spec: str, realtime: bool = True) -> AudioSource:
    """Open the input named by ``spec``; raises :class:`AudioInputError` with what is available."""
    if spec == "mic" or spec.startswith("mic:"):
        return DeviceAudioSource(resolve_input_device(spec[4:] or None), kind="mic")
    if spec == "loopback":
        return open_loopback()
    path = Path(spec)
    if not path.exists():
        raise AudioInputError(f"--input {spec!r} is neither mic, mic:NAME|INDEX, loopback, nor an existing file")
    return FileAudioSource(path, realtime=realtime)
