"""STAND-INs for devices that cannot exist on CI machines (no v4l2loopback; PortAudio is tested for real
against a private PulseAudio elsewhere): they record what the sinks send, at the pace a device would pull."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np


class RecordingCameraStandIn:
    """Stands in for pyvirtualcam.Camera (no virtual camera device can exist here): records what is sent."""

    def __init__(self, width: int, height: int, fps: float, device: str | None = None) -> None:
        self.width, self.height, self.fps, self.device = width, height, fps, device
        self.sent: list[tuple[float, np.ndarray]] = []
        self.enough = threading.Event()
        self.closed = False

    def send(self, frame: np.ndarray) -> None:
        assert frame.shape == (self.height, self.width, 3) and frame.dtype == np.uint8
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
