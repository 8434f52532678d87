"""The virtual camera sink up to the pyvirtualcam call (v4l2loopback cannot load on CI machines), and the
real device where a loopback /dev/video exists."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from avatar.commands.devices import probe_virtual_camera
from peer_local.sinks.camera_lock import CameraLock
from peer_local.sinks.virtual_camera import VirtualCameraBusyError, VirtualCameraError, VirtualCameraSink
from tests.device_stand_ins import RecordingCameraStandIn

ROOT = Path(__file__).resolve().parent.parent

# pyvirtualcam 0.15's text when OBS's Virtual Camera (or another pyvirtualcam) already feeds the camera: the
# 'obs' backend's video_queue_create finds the shared queue open (native_windows_obs/virtual_output.h and
# queue/shared-memory-queue.c: "fail if already in use"); Camera() joins every backend's error (camera.py)
OBS_BUSY = (
    "'obs' backend: virtual camera output could not be started\n"
    "'unitycapture' backend: No camera registered. Did you install any camera?"
)

HOLD_LOCK = """
import sys
from pathlib import Path
from peer_local.sinks.camera_lock import CameraLock
lock = CameraLock(Path(sys.argv[1]), command="avatar local")
assert lock.acquire() is None
print("holding", flush=True)
sys.stdin.read()
lock.release()
"""


def avatar_frame(value: int) -> av.VideoFrame:
    image = np.full((512, 512, 3), value, dtype=np.uint8)
    return av.VideoFrame.from_ndarray(image, format="rgb24")


async def test_frames_go_out_at_the_camera_rate_placed_on_a_background_and_repeated_over_gaps() -> None:
    cameras: list[RecordingCameraStandIn] = []

    def factory(*args: object, **kwargs: object) -> RecordingCameraStandIn:
        cameras.append(RecordingCameraStandIn(*args, **kwargs))  # type: ignore[arg-type]
        return cameras[-1]

    sink = VirtualCameraSink(1280, 720, 25, camera_factory=factory)
    sink.start()
    sink.on_connection(True)
    sink.on_video(avatar_frame(200), time.time())  # then nothing: a network gap
    assert cameras[0].enough.wait(timeout=10)
    await sink.close()
    camera = cameras[0]
    times = np.array([t for t, _ in camera.sent])
    assert np.median(np.diff(times)) == pytest.approx(0.04, abs=0.005)  # its own steady 25 fps clock
    last = camera.sent[-1][1]
    assert last[360, 640].tolist() == [200, 200, 200]  # the avatar, centred, full height, not stretched
    assert last[360, 100].max() < 60 and last[0, 639].tolist() == [200, 200, 200]
    assert sink.repeated > 20 and camera.closed  # the last frame was repeated across the gap


async def test_video_is_delayed_by_the_audio_output_latency_and_late_frames_are_dropped() -> None:
    sink = VirtualCameraSink(640, 360, 25, video_delay_s=lambda: 0.5, camera_factory=RecordingCameraStandIn)
    now = time.time()
    sink.on_video(avatar_frame(10), now - 0.6)
    sink.on_video(avatar_frame(20), now - 0.55)
    sink.on_video(avatar_frame(30), now - 0.1)
    chosen = sink._due_frame(now)
    assert chosen is not None and chosen[0, 0, 0] == 20  # the newest due frame; the older one is dropped
    assert sink.dropped_late == 1
    assert sink._due_frame(now) is None  # the third is not due for another 0.4 s


async def test_a_lost_connection_shows_reconnecting_not_a_frozen_or_black_frame() -> None:
    cameras: list[RecordingCameraStandIn] = []
    sink = VirtualCameraSink(
        640, 360, 25, camera_factory=lambda *a, **k: cameras.append(RecordingCameraStandIn(*a, **k)) or cameras[-1]
    )
    sink.start()
    sink.on_connection(True)
    sink.on_video(avatar_frame(220), time.time())
    sink.on_connection(False)
    assert cameras[0].enough.wait(timeout=10)
    await sink.close()
    last = cameras[0].sent[-1][1]
    assert 60 < last[180, 320, 0] < 120  # dimmed, not black, not frozen bright
    assert last.max() > 200  # the "reconnecting..." text


def test_no_virtual_camera_is_a_clear_error_with_the_fix() -> None:
    def no_camera(*args: object, **kwargs: object) -> None:
        raise RuntimeError("'v4l2loopback' backend: No v4l2 loopback device found at /dev/video[0-99]")

    sink = VirtualCameraSink(camera_factory=no_camera)
    with pytest.raises(VirtualCameraError, match=r"(?s)no virtual camera available.*(v4l2loopback|OBS).*--camera none"):
        sink.start()


def has_loopback_camera() -> bool:
    return any("loopback" in Path(p).read_text().lower() for p in glob.glob("/sys/class/video4linux/video*/name"))


@pytest.mark.skipif(
    not has_loopback_camera(),
    reason="no v4l2loopback device on this machine (the kernel module cannot be loaded on CI machines)",
)
async def test_the_real_virtual_camera_receives_frames() -> None:
    sink = VirtualCameraSink(640, 360, 25)
    sink.start()
    sink.on_connection(True)
    sink.on_video(avatar_frame(128), time.time())
    time.sleep(0.5)  # noqa: ASYNC251 - a real device: let its clock send a few frames
    await sink.close()
    assert sink.frames_sent >= 5


def test_a_busy_obs_camera_says_to_stop_obs_or_the_other_avatar_not_to_install_obs() -> None:
    def busy(*args: object, **kwargs: object) -> None:
        raise RuntimeError(OBS_BUSY)

    with pytest.raises(VirtualCameraBusyError, match="stop OBS's Virtual Camera or the other avatar") as caught:
        VirtualCameraSink(camera_factory=busy).start()
    assert "install" not in str(caught.value).split("To fix:")[1]  # the old advice: "install OBS Studio"


@pytest.fixture
def held_camera(tmp_path: Path) -> Iterator[Path]:
    """Another process (a running call) holding the camera's lock file."""
    path = tmp_path / "virtual-camera.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        yield path
    finally:
        holder.communicate(timeout=10)  # closes stdin: the holder releases and exits


def test_a_camera_a_running_call_holds_is_neither_opened_by_a_second_avatar_nor_probed(held_camera: Path) -> None:
    opened: list[object] = []

    def camera(*args: object, **kwargs: object) -> RecordingCameraStandIn:
        opened.append(args)
        return RecordingCameraStandIn(*args, **kwargs)  # type: ignore[arg-type]

    sink = VirtualCameraSink(camera_factory=camera, lock=CameraLock(held_camera))
    with pytest.raises(VirtualCameraBusyError, match=r"in use by avatar local \(pid \d+\).*stop OBS's Virtual Camera"):
        sink.start()
    ok, detail = probe_virtual_camera(camera_factory=camera, platform="win32", lock=CameraLock(held_camera))
    assert not ok and detail.startswith("in use by avatar local (pid")
    assert opened == []  # the running call's camera was never touched


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process that has exited."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(child.stdout)


async def test_a_lock_left_by_a_dead_process_is_taken_over_and_released_on_close(tmp_path: Path, dead_pid: int) -> None:
    path = tmp_path / "virtual-camera.lock"
    path.write_text(json.dumps({"pid": dead_pid, "command": "avatar local"}))
    sink = VirtualCameraSink(640, 360, 25, camera_factory=RecordingCameraStandIn, lock=CameraLock(path))
    sink.start()
    assert json.loads(path.read_text())["pid"] == os.getpid()
    await sink.close()
    assert not path.exists()


def test_probing_a_free_camera_on_windows_opens_and_closes_it(tmp_path: Path) -> None:
    cameras: list[RecordingCameraStandIn] = []

    class ObsStandIn(RecordingCameraStandIn):
        backend = "obs"

    def camera(*args: object, **kwargs: object) -> RecordingCameraStandIn:
        cameras.append(ObsStandIn(*args, device="OBS Virtual Camera", **kwargs))  # type: ignore[arg-type]
        return cameras[-1]

    ok, detail = probe_virtual_camera(camera_factory=camera, platform="win32", lock=CameraLock(tmp_path / "lock"))
    assert ok and detail == "obs: OBS Virtual Camera, free" and cameras[0].closed


def test_probing_a_camera_obs_itself_feeds_says_who_to_stop(tmp_path: Path) -> None:
    def busy(*args: object, **kwargs: object) -> None:
        raise RuntimeError(OBS_BUSY)

    ok, detail = probe_virtual_camera(camera_factory=busy, platform="win32", lock=CameraLock(tmp_path / "lock"))
    assert not ok and "stop OBS's Virtual Camera or the other avatar" in detail


async def test_frames_are_paced_on_a_fine_clock_even_where_time_monotonic_ticks_in_15_6_ms_steps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Python 3.11's time.monotonic on Windows is GetTickCount64 (15.6 ms steps): pacing 25 fps on it jitters
    each frame by up to 40 %."""
    real = time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: real() // 0.015625 * 0.015625)
    sent: list[float] = []

    class TimingCamera(RecordingCameraStandIn):
        def send(self, frame: np.ndarray) -> None:
            sent.append(time.perf_counter())
            super().send(frame)

    cameras: list[TimingCamera] = []
    sink = VirtualCameraSink(
        320, 180, 25, camera_factory=lambda *a, **k: cameras.append(TimingCamera(*a, **k)) or cameras[-1]
    )
    sink.start()
    sink.on_connection(True)
    assert cameras[0].enough.wait(timeout=10)
    await sink.close()
    # how late each frame left against the 25 fps grid: a 15.6 ms clock spreads it evenly over 0-15.6 ms
    lateness = np.array(sent) - 0.04 * np.arange(len(sent))
    spread = np.percentile(lateness, 75) - np.percentile(lateness, 25)
    assert spread < 0.004, lateness - lateness.min()


def test_a_busy_camera_stops_avatar_local_even_when_the_camera_was_not_asked_for(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """It used to say "install OBS" and run on without a camera."""
    import pyvirtualcam

    from peer_local.settings import LocalSettings
    from peer_local.sinks.setup import build_sinks

    def busy(*args: object, **kwargs: object) -> None:
        raise RuntimeError(OBS_BUSY)

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))  # the real camera's lock file lands here
    monkeypatch.setattr(pyvirtualcam, "Camera", busy)
    with pytest.raises(VirtualCameraBusyError, match="stop OBS's Virtual Camera or the other avatar"):
        build_sinks(LocalSettings.load({"mic_out": "none", "camera": "virtual"}))
    assert list(tmp_path.rglob("*.lock")) == []  # the lock taken before opening was given back
