"""What the laptop's devices output, captured on one clock (``time.monotonic``): a camera backend stand-in that
timestamps each frame as pyvirtualcam would send it, and the virtual microphone's null sink monitor read
through a private PulseAudio daemon, each sample placed at its capture time."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from media.frames import AUDIO_RATE

MIC_SINK = "avatar_mic"
ANCHOR_WINDOW_S = 10.0  # a monitor recording is placed on the clock by the blocks of each 10 s
PAGE_SINK = "avatar_page"  # where the preview page's browser plays (benchmarks/harness/page_capture.py)


def check_frame_as_pyvirtualcam(frame: np.ndarray, width: int, height: int) -> None:
    """What pyvirtualcam 0.15.0's ``Camera.send`` (pyvirtualcam/camera.py) checks before it hands a frame to its
    backend, synchronously: dtype uint8 (TypeError "unexpected frame dtype") and, for the default RGB format,
    shape (height, width, 3) (ValueError "unexpected frame shape", the check built in ``Camera.__init__``)."""
    if frame.dtype != np.uint8:
        raise TypeError(f"unexpected frame dtype: {frame.dtype} != uint8")
    if frame.shape != (height, width, 3):
        raise ValueError(f"unexpected frame shape: {frame.shape} != {(height, width, 3)}")


class TimestampingCameraStandIn:
    """Stands in for pyvirtualcam.Camera (no virtual camera device exists here): keeps what ``read`` makes of
    every frame's luma (the luma itself unless told: a long run keeps only what it measures) with the monotonic
    time of ``send``, the moment pyvirtualcam hands a frame to the device (after its checks:
    :func:`check_frame_as_pyvirtualcam`)."""

    def __init__(
        self,
        width: int,
        height: int,
        fps: float,
        device: str | None = None,
        read: Callable[[np.ndarray], Any] | None = None,
    ) -> None:
        self.width, self.height, self.fps, self.device = width, height, fps, device or "timestamping stand-in"
        self.times: list[float] = []
        self.luma: list[Any] = []
        self._read = read
        self._lock = threading.Lock()

    def send(self, frame: np.ndarray) -> None:
        check_frame_as_pyvirtualcam(frame, self.width, self.height)
        at = time.monotonic()
        gray = (frame[..., 0] * 0.299 + frame[..., 1] * 0.587 + frame[..., 2] * 0.114).astype(np.uint8)
        reading = gray if self._read is None else self._read(gray)
        with self._lock:
            self.times.append(at)
            self.luma.append(reading)

    def frames(self) -> tuple[list[float], list[Any]]:
        with self._lock:
            return list(self.times), list(self.luma)

    def close(self) -> None:
        return None


class PrivatePulseAudio:
    """A PulseAudio daemon of our own with null sinks (the first the default), ``avatar_mic`` unless told;
    ``env`` reaches it."""

    def __init__(self, sinks: tuple[str, ...] = (MIC_SINK,)) -> None:
        binary = shutil.which("pulseaudio")
        if binary is None:
            raise RuntimeError("pulseaudio is not installed (apt-get install pulseaudio pulseaudio-utils)")
        self._dir = Path(tempfile.mkdtemp(prefix="avatar-pulse-"))
        socket = self._dir / "native"
        env = {**os.environ, "XDG_RUNTIME_DIR": str(self._dir), "HOME": str(self._dir)}
        self._daemon = subprocess.Popen(
            [
                binary,
                "--daemonize=no",
                "--exit-idle-time=-1",
                "-n",
                "--use-pid-file=no",
                f"--load=module-native-protocol-unix auth-anonymous=1 socket={socket}",
                *[f"--load=module-null-sink sink_name={sink}" for sink in sinks],
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.env = {"PULSE_SERVER": f"unix:{socket}"}
        self.client_env = {**env, **self.env}  # the whole environment of a client process (pactl, PortAudio)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            listing = subprocess.run(
                ["pactl", "list", "short", "sinks"], env=self.client_env, capture_output=True, text=True
            )
            if all(sink in listing.stdout for sink in sinks):
                return
            time.sleep(0.1)  # polling a daemon's start-up, bounded by the deadline
        self.close()
        raise RuntimeError("private PulseAudio did not start")

    def close(self) -> None:
        self._daemon.terminate()
        self._daemon.wait(timeout=10)
        shutil.rmtree(self._dir, ignore_errors=True)


class MonitorCapture:
    """Records a null sink's monitor (``avatar_mic`` unless told) through PortAudio (PULSE_SOURCE picks the
    monitor), placing each block at the monotonic time it was captured: callback time minus the capture latency
    PulseAudio reports."""

    def __init__(self, sd: Any, sink: str = MIC_SINK) -> None:
        self._sd = sd
        self.sink = sink
        self._blocks: list[tuple[float, np.ndarray]] = []
        self._lock = threading.Lock()
        self._stream: Any = None

    def start(self) -> None:
        os.environ["PULSE_SOURCE"] = f"{self.sink}.monitor"  # read by libpulse when the stream connects
        self._stream = self._sd.InputStream(
            device="pulse", samplerate=AUDIO_RATE, channels=1, dtype="int16", blocksize=480, callback=self._callback
        )
        self._stream.start()

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        # PortAudio's capture time of this block (the latency PulseAudio reports, through the ALSA plugin), mapped
        # to the monotonic clock by reading both clocks now, whenever the callback got to run
        captured = float(time_info.inputBufferAdcTime) + time.monotonic() - float(self._stream.time)
        with self._lock:
            self._blocks.append((captured, indata[:, 0].copy()))

    def stop(self) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None

    def audio(self) -> tuple[np.ndarray, float]:
        """The captured samples on one time line and the time of its first sample: each block placed at its own
        capture time as the blocks of the ``ANCHOR_WINDOW_S`` around it place it (the median of their capture
        time minus position), so one late callback moves nothing, and a sound card clock that runs apart from
        the monotonic clock, or samples lost to an overrun, never shift the rest of a long recording."""
        with self._lock:
            blocks = list(self._blocks)
        if not blocks:
            return np.zeros(0, dtype=np.int16), 0.0
        sizes = np.array([b.size for _, b in blocks])
        positions = np.concatenate([[0], np.cumsum(sizes[:-1])]) / AUDIO_RATE
        lead = np.array([at for at, _ in blocks]) - positions  # each block's capture time minus its position
        window = max(1, int(ANCHOR_WINDOW_S * AUDIO_RATE / max(1, int(np.median(sizes)))))
        anchors = np.array([np.median(lead[i : i + window]) for i in range(0, len(blocks), window)])
        centres = np.array([positions[min(i + window // 2, len(blocks) - 1)] for i in range(0, len(blocks), window)])
        times = positions + np.interp(positions, centres, anchors)
        start = float(times[0])
        out = np.zeros(int(round((times[-1] - start) * AUDIO_RATE)) + int(sizes[-1]), dtype=np.int16)
        for at, (_, samples) in zip(times, blocks, strict=True):
            first = int(round((at - start) * AUDIO_RATE))
            out[first : first + samples.size] = samples[: max(0, out.size - first)]
        return out, start
