"""The virtual camera sink up to the pyvirtualcam call (v4l2loopback cannot load on CI machines), and the
real device where a loopback /dev/video exists."""

from __future__ import annotations

import glob
import time
from pathlib import Path

import av
import numpy as np
import pytest

from peer_local.sinks.virtual_camera import VirtualCameraError, VirtualCameraSink
from tests.device_stand_ins import RecordingCameraStandIn


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
