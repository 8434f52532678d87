"""The clone's face as a webcam: pyvirtualcam (OBS Virtual Camera / Unity Capture on Windows,
v4l2loopback on Linux), on its own steady clock.

Frames go out at the camera's fps whatever the network does: each frame when it is due (its RTP time on the
arrival clock, see media_timeline.py), the last one repeated over a gap, late ones dropped. Video is held back
by the virtual microphone's output latency, measured the same way from each sample's due time to its output,
so the lips match the voice the meeting hears. The square avatar is placed on a background (never stretched) at a
size meeting apps like (1280x720 by default). While the avatar is away the last frame stays, dimmed, with
"reconnecting…" on it: the meeting never sees a frozen or black camera.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import av
import cv2
import numpy as np

from media.clock import pacing_clock
from peer_local.sinks.camera_lock import CameraLock
from peer_local.sinks.media_timeline import StreamTimeline

logger = logging.getLogger(__name__)

MAX_PENDING = 50  # 2 s at 25 fps
SEND_EARLY_S = 0.001  # a frame due within this is sent now (the thread's wake-up is not finer)


class VirtualCameraError(RuntimeError):
    """No virtual camera backend is available."""


class VirtualCameraBusyError(VirtualCameraError):
    """The virtual camera exists but another program is feeding it."""


BUSY_FIX = "stop OBS's Virtual Camera or the other avatar (avatar local / avatar demo) that is using it"
# pyvirtualcam 0.15's texts for a camera someone else holds: the OBS backend's shared video queue exists already
# (native_windows_obs/virtual_output.h: "virtual camera output could not be started", raised when
# video_queue_create finds the queue open: "fail if already in use"); Unity Capture and v4l2loopback:
# "... is already in use." / "All cameras are already in use."
BUSY_TEXTS = ("virtual camera output could not be started", "already in use")


def running_command() -> str:
    """What this process is, for "in use by avatar demo (pid N)"."""
    command = next((a for a in sys.argv[1:] if a in ("local", "demo")), None)
    return f"avatar {command}" if command else "avatar"


def is_busy_error(message: str) -> bool:
    return any(text in message for text in BUSY_TEXTS)


def camera_error(exc: Exception) -> VirtualCameraError:
    """pyvirtualcam's error as ours: busy (with who to stop) or missing (with what to install)."""
    if is_busy_error(str(exc)):
        return VirtualCameraBusyError(f"the virtual camera is in use ({exc}). To fix: {BUSY_FIX}.")
    return VirtualCameraError(
        f"no virtual camera available ({exc}). To fix: {install_hint()}. Or run with --camera none."
    )


def install_hint() -> str:
    if sys.platform == "win32":
        return "install OBS Studio (28 or newer) and start its Virtual Camera once (or install Unity Capture)"
    if sys.platform == "darwin":
        return "install OBS Studio (28 or newer) and start its Virtual Camera once"
    return (
        "load v4l2loopback: sudo apt install v4l2loopback-dkms && "
        "sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label='Avatar Camera'"
    )


def background(width: int, height: int) -> np.ndarray:
    """A calm dark gradient for the sides of the square avatar."""
    column = np.linspace(38, 22, height, dtype=np.float32)[:, None, None]
    tint = np.array([1.0, 1.05, 1.15], dtype=np.float32)[None, None, :]
    return np.broadcast_to(column * tint, (height, width, 3)).astype(np.uint8).copy()


def compose(avatar: np.ndarray, canvas: np.ndarray, mirror: bool) -> np.ndarray:
    """The avatar scaled to fit the canvas height (aspect kept), centred on it."""
    height, width = canvas.shape[:2]
    scale = min(height / avatar.shape[0], width / avatar.shape[1])
    w, h = int(avatar.shape[1] * scale), int(avatar.shape[0] * scale)
    resized = cv2.resize(avatar, (w, h), interpolation=cv2.INTER_LINEAR)
    out = canvas.copy()
    x, y = (width - w) // 2, (height - h) // 2
    out[y : y + h, x : x + w] = resized
    return out[:, ::-1].copy() if mirror else out


def reconnecting(frame: np.ndarray) -> np.ndarray:
    dimmed = (frame.astype(np.float32) * 0.45).astype(np.uint8)
    h, w = dimmed.shape[:2]
    text = "reconnecting..."
    scale = h / 480
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
    cv2.putText(
        dimmed, text, ((w - tw) // 2, h - 3 * th), cv2.FONT_HERSHEY_SIMPLEX, scale, (235, 235, 235), 2, cv2.LINE_AA
    )
    return dimmed


class VirtualCameraSink:
    """Feeds a virtual webcam from the received video, paced by its own clock in a thread."""

    def __init__(
        self,
        width: int = 1280,
        height: int = 720,
        fps: int = 25,
        device: str | None = None,
        mirror: bool = False,
        video_delay_s: Callable[[], float] | None = None,
        camera_factory: Any = None,
        lock: CameraLock | None = None,
    ) -> None:
        self.width, self.height, self.fps = width, height, fps
        self.device = device
        self.mirror = mirror
        self.video_delay_s = video_delay_s or (lambda: 0.0)
        self._factory = camera_factory
        # the real camera is announced in the user's lock file; a stand-in only when a test passes a lock
        self._camera_lock = (
            lock if lock is not None else (CameraLock(command=running_command()) if camera_factory is None else None)
        )
        self._camera: Any = None
        self._pending: deque[tuple[float, np.ndarray]] = deque(maxlen=MAX_PENDING)  # (due, frame)
        self.timeline = StreamTimeline()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._canvas = background(width, height)
        self._last = self._canvas.copy()
        self.connected = False
        self.frames_sent = 0
        self.repeated = 0
        self.dropped_late = 0

    def start(self) -> None:
        """Open the camera (a clear error if there is none) and start the clock."""
        if self._camera_lock is not None:
            holder = self._camera_lock.acquire()
            if holder is not None:
                raise VirtualCameraBusyError(
                    f"the virtual camera is in use by {holder.describe()}. To fix: {BUSY_FIX}."
                )
        factory = self._factory
        if factory is None:
            import pyvirtualcam

            factory = pyvirtualcam.Camera
        try:
            self._camera = factory(self.width, self.height, self.fps, device=self.device)
        except RuntimeError as exc:
            if self._camera_lock is not None:
                self._camera_lock.release()
            raise camera_error(exc) from exc
        logger.info(
            "virtual camera: %s (%dx%d @ %d fps)",
            getattr(self._camera, "device", "?"),
            self.width,
            self.height,
            self.fps,
        )
        self._thread = threading.Thread(target=self._run, name="virtual-camera", daemon=True)
        self._thread.start()

    def on_video(self, frame: av.VideoFrame, arrival: float) -> None:
        due = self.timeline.due(frame, arrival)
        image = frame.to_ndarray(format="rgb24")
        with self._lock:
            self._pending.append((due, image))

    def on_audio(self, frame: av.AudioFrame, arrival: float) -> None:
        return None

    @property
    def last_live_frame(self) -> np.ndarray:
        """The last avatar frame as placed on the camera (what the "reconnecting..." frame dims)."""
        return self._last

    def on_connection(self, connected: bool) -> None:
        self.connected = connected
        if not connected:
            with self._lock:
                newest = self._pending[-1][1] if self._pending else None
                self._pending.clear()  # the rest of the lost call is not played out
            if newest is not None:
                self._last = compose(newest, self._canvas, self.mirror)  # the picture "reconnecting..." dims

    def _due_frame(self, now: float) -> np.ndarray | None:
        """The newest frame whose presentation time (due + delay) has come; older ones are dropped."""
        delay = self.video_delay_s()
        chosen = None
        with self._lock:
            while self._pending and self._pending[0][0] + delay <= now:
                if chosen is not None:
                    self.dropped_late += 1
                chosen = self._pending.popleft()[1]
        return chosen

    def _next_due(self) -> float | None:
        """When the oldest pending frame is to be shown (epoch seconds)."""
        with self._lock:
            due = self._pending[0][0] if self._pending else None
        return None if due is None else due + self.video_delay_s()

    def _run(self) -> None:
        # each frame goes out at its presentation time, so lips and voice meet within a millisecond or two
        # rather than on the next tick of a fixed grid (up to a frame, 40 ms, late); when nothing is due for
        # a frame and a half, the last frame is repeated at the camera's rate
        period = 1.0 / self.fps
        next_repeat = pacing_clock()
        try:
            while not self._stop.is_set():
                image = self._due_frame(time.time() + SEND_EARLY_S) if self.connected else None
                if image is not None:
                    self._last = compose(image, self._canvas, self.mirror)
                    self._camera.send(self._last)
                    self.frames_sent += 1
                    next_repeat = pacing_clock() + 1.5 * period
                elif pacing_clock() >= next_repeat:
                    self._camera.send(self._last if self.connected else reconnecting(self._last))
                    self.frames_sent += 1
                    self.repeated += 1
                    next_repeat += period
                    if pacing_clock() - next_repeat > 1.0:  # the machine stalled: re-anchor instead of bursting
                        next_repeat = pacing_clock() + period
                wait = next_repeat - pacing_clock()
                due = self._next_due() if self.connected else None
                if due is not None:
                    wait = min(wait, due - SEND_EARLY_S - time.time())
                if wait > 0:
                    self._stop.wait(wait)
        except Exception:
            logger.exception("virtual camera stopped")

    async def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._camera is not None:
            self._camera.close()
            self._camera = None
        if self._camera_lock is not None:
            self._camera_lock.release()
