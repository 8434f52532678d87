"""Building the local peer's sinks from settings: recorder, virtual microphone, virtual camera.

A device the user asked for explicitly must work (a clear error otherwise); a default one that is missing
is reported with its fix and skipped, so a first run works on any machine. A camera that exists but is busy
(OBS's own Virtual Camera, another avatar) is an error either way: running without it would go unnoticed.
"""

from __future__ import annotations

import logging

from peer_local.audio_input.base import AudioInputError
from peer_local.settings import LocalSettings
from peer_local.sinks.base import MediaSink
from peer_local.sinks.null import NullSink
from peer_local.sinks.recorder import RecorderSink
from peer_local.sinks.virtual_camera import VirtualCameraBusyError, VirtualCameraError, VirtualCameraSink
from peer_local.sinks.virtual_mic import VirtualMicSink, default_mic_device, find_output_devices

logger = logging.getLogger(__name__)


def build_sinks(settings: LocalSettings, explicit: frozenset[str] = frozenset()) -> list[MediaSink]:
    """``explicit``: which of "camera", "mic_out" the user set themselves."""
    sinks: list[MediaSink] = [NullSink()]
    if settings.record:
        sinks.append(RecorderSink(settings.record, fps=settings.camera_fps))
    mic: VirtualMicSink | None = None
    if settings.mic_out != "none":
        try:
            found = find_output_devices(settings.mic_out or default_mic_device())
            mic = VirtualMicSink(found[0], fallbacks=found[1:])  # WASAPI first, then DirectSound, then MME
            mic.start()
            sinks.append(mic)
        except AudioInputError as exc:
            if "mic_out" in explicit:
                raise
            logger.warning("no virtual microphone: %s", exc)
            mic = None
    if settings.camera == "virtual":
        camera = VirtualCameraSink(
            settings.camera_width,
            settings.camera_height,
            settings.camera_fps,
            settings.camera_device,
            settings.mirror,
            video_delay_s=(lambda: mic.output_latency_s) if mic else None,
        )
        try:
            camera.start()
            sinks.append(camera)
        except VirtualCameraError as exc:
            if "camera" in explicit or isinstance(exc, VirtualCameraBusyError):
                raise
            logger.warning("%s", exc)
    return sinks
