"""STAND-INs for devices that cannot exist on CI machines (no v4l2loopback; PortAudio is tested for real
against a private PulseAudio elsewhere): they record what the sinks send, at the pace a device would pull."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from benchmarks.harness.sink_capture import check_frame_as_pyvirtualcam


class RecordingCameraStandIn:
    """Stands in for pyvirtualcam.Camera (no virtual camera device can exist here): checks each frame as upstream's
    ``send`` does, then records it."""

    def __init__(self, width: int, height: int, fps: float, device: str | None = None) -> None:
        self.width, self.height, self.fps, self.device = width, height, fps, device
        self.sent: list[tuple[float, np.ndarray]] = []
        self.enough = threading.Event()
        self.closed = False

    def send(self, frame: np.ndarray) -> None:
        check_frame_as_pyvirtualcam(frame, self.width, self.height)
        self.sent.append((time.monotonic(), frame))
        if len(self.sent) >= 30:
            self.enough.set()

    def close(self) -> None:
        self.closed = True


class PullingOutputStandIn:
    """Stands in for sounddevice.OutputStream: a thread pulls ``blocksize`` samples every block period, as the
    sound card would, and records (time, peak) of what the virtual microphone played."""

    def __init__(self, samplerate: int, blocksize: int, callback: Any, **_: Any) -> None:
        self.samplerate, self.blocksize, self.callback = samplerate, blocksize, callback
        self.latency = 0.01
        self.played: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        period = self.blocksize / self.samplerate
        next_at = time.monotonic()
        while not self._stop.is_set():
            out = np.zeros((self.blocksize, 1), dtype=np.int16)
            self.callback(out, self.blocksize, None, None)
            self.played.append((time.monotonic(), int(np.abs(out.astype(np.int32)).max())))
            next_at += period
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def close(self) -> None:
        self.stop()

    def peak_between(self, start: float, end: float) -> int:
        return max((peak for t, peak in self.played if start <= t <= end), default=0)


class WindowsOutputStandIn:
    """STAND-IN for sounddevice.OutputStream on a Windows machine described by a recorded-example device list.
    It keeps PortAudio's WASAPI rule as read in src/hostapi/wasapi/pa_win_wasapi.c (GetClosestFormat): in shared
    mode a stream whose rate differs from the device's mix format fails with paInvalidSampleRate unless
    paWinWasapiAutoConvert (sounddevice's ``WasapiSettings(auto_convert=True)``) is set; MME and DirectSound
    convert by themselves. Host APIs in ``broken`` refuse every stream (a driver that fails on WASAPI)."""

    def __init__(self, devices: list[Any], broken: tuple[str, ...] = ()) -> None:
        self.devices = {d.index: d for d in devices}
        self.broken = broken
        self.attempts: list[tuple[int, str, bool]] = []  # (device index, host API, auto_convert asked)

    def __call__(self, device: int, samplerate: int, extra_settings: Any = None, **kwargs: Any) -> PullingOutputStandIn:
        import sounddevice as sd

        info = self.devices[device]
        auto_convert = bool(
            extra_settings is not None and extra_settings._streaminfo.flags & sd._lib.paWinWasapiAutoConvert
        )
        self.attempts.append((device, info.hostapi, auto_convert))
        if info.hostapi in self.broken:
            raise sd.PortAudioError("Error opening OutputStream: Unanticipated host error [PaErrorCode -9999]")
        if info.hostapi == "Windows WASAPI" and samplerate != info.default_samplerate and not auto_convert:
            raise sd.PortAudioError("Error opening OutputStream: Invalid sample rate [PaErrorCode -9997]")
        stream = PullingOutputStandIn(samplerate=samplerate, **kwargs)
        stream.latency = 0.003 if info.hostapi == "Windows WASAPI" else 0.12
        return stream


class SoundCardStandIn:
    """STAND-IN for the ``soundcard`` module on Windows (no WASAPI here), listing a recorded-example device list
    (tests/data/windows_devices_soundcard_*.json) with SoundCard's API as read in soundcard/mediafoundation.py:
    ``default_speaker()`` (raises RuntimeError without an output, as the COM call does), ``all_microphones(
    include_loopback)`` (loopbacks of every speaker first, same id and name), ``get_microphone(id,
    include_loopback)`` (by id, then by part of the name, else IndexError) and ``recorder(samplerate, channels,
    blocksize)`` whose ``record(numframes)`` returns (frames, channels) float32 at the device's pace. Each
    endpoint records a constant level of its own (``level_of``), so a test can tell which one it hears."""

    def __init__(self, listing: dict[str, Any], broken: tuple[str, ...] = ()) -> None:
        self.default: dict[str, Any] | None = listing["default_speaker"]
        self.microphones: list[dict[str, Any]] = listing["all_microphones_include_loopback"]
        self.broken = broken  # names whose recorder fails to start (SoundCard asserts on an unusual mix format)
        self.unplugged: set[str] = set()  # names whose recording stops with a COM error
        self.opened: list[str] = []

    @staticmethod
    def level_of(name: str) -> float:
        return round(0.1 + (sum(map(ord, name)) % 80) / 100, 2)

    def default_speaker(self) -> Any:
        if self.default is None:
            raise RuntimeError("Error 0x80070490")  # E_NOTFOUND from GetDefaultAudioEndpoint
        return _Endpoint(self, self.default["id"], self.default["name"], False)

    def all_microphones(self, include_loopback: bool = False) -> list[Any]:
        return [
            _Endpoint(self, m["id"], m["name"], m["isloopback"])
            for m in self.microphones
            if include_loopback or not m["isloopback"]
        ]

    def get_microphone(self, id: str, include_loopback: bool = False) -> Any:
        microphones = self.all_microphones(include_loopback)
        match = next((m for m in microphones if m.id == id), None) or next(
            (m for m in microphones if id in m.name), None
        )
        if match is None:
            raise IndexError(f"no device with id {id}")
        return match


class _Endpoint:
    def __init__(self, card: SoundCardStandIn, id: str, name: str, isloopback: bool) -> None:
        self.card, self.id, self.name, self.isloopback = card, id, name, isloopback
        self.channels = 2

    def recorder(self, samplerate: int, channels: int | None = None, blocksize: int | None = None) -> Any:
        if self.name in self.card.broken:
            raise AssertionError  # mediafoundation.py: assert ppMixFormat[0][0].Format.wFormatTag == 0xFFFE
        self.card.opened.append(self.name)
        return _Recorder(self, samplerate, channels or self.channels)


class _Recorder:
    def __init__(self, endpoint: _Endpoint, samplerate: int, channels: int) -> None:
        self.endpoint, self.samplerate, self.channels = endpoint, samplerate, channels
        self._next = time.perf_counter()

    def __enter__(self) -> _Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def record(self, numframes: int) -> np.ndarray:
        if self.endpoint.name in self.endpoint.card.unplugged:
            raise RuntimeError("Error 0x88890004")  # AUDCLNT_E_DEVICE_INVALIDATED
        self._next += numframes / self.samplerate
        threading.Event().wait(max(0.0, self._next - time.perf_counter()))
        return np.full((numframes, self.channels), SoundCardStandIn.level_of(self.endpoint.name), dtype=np.float32)
