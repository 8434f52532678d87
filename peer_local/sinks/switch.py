"""The source switch in front of the virtual camera and microphone: the avatar, or the person themself.

Both sources deliver all the time; the switch forwards one of them. Flipping it takes effect on the very next
frame of the chosen source (no device is reopened), which is what "take over within one frame" needs. Without a
webcam (``person_has_video`` False) a take-over switches the sound only: the camera keeps the avatar's idle,
live frames rather than a frozen one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import av

from peer_local.sinks.base import MediaSink

logger = logging.getLogger(__name__)

Source = Literal["avatar", "person"]


class SourceSwitch:
    """A :class:`MediaSink` for the avatar stream, plus ``person_video``/``person_audio`` for the real devices."""

    def __init__(self, sinks: Sequence[MediaSink]) -> None:
        self.sinks = list(sinks)
        self.source: Source = "avatar"
        self.person_has_video = False  # set once a real webcam feeds person_video
        self._avatar_connected = False

    @property
    def video_source(self) -> Source:
        return "person" if self.source == "person" and self.person_has_video else "avatar"

    def select(self, source: Source) -> None:
        if source == self.source:
            return
        self.source = source
        logger.info("virtual camera: %s; virtual microphone: %s", self.video_source, self.source)
        # the devices see a live source either way; back on the avatar they show its connection state again
        for sink in self.sinks:
            sink.on_connection(True if self.video_source == "person" else self._avatar_connected)

    def on_video(self, frame: av.VideoFrame, arrival: float) -> None:
        if self.video_source == "avatar":
            for sink in self.sinks:
                sink.on_video(frame, arrival)

    def on_audio(self, frame: av.AudioFrame, arrival: float) -> None:
        if self.source == "avatar":
            for sink in self.sinks:
                sink.on_audio(frame, arrival)

    def on_connection(self, connected: bool) -> None:
        self._avatar_connected = connected
        if self.video_source == "avatar":
            for sink in self.sinks:
                sink.on_connection(connected)

    def person_video(self, frame: av.VideoFrame, arrival: float) -> None:
        if self.video_source == "person":
            for sink in self.sinks:
                sink.on_video(frame, arrival)

    def person_audio(self, frame: av.AudioFrame, arrival: float) -> None:
        if self.source == "person":
            for sink in self.sinks:
                sink.on_audio(frame, arrival)

    async def close(self) -> None:
        for sink in self.sinks:
            await sink.close()
