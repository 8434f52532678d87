"""A sink that only counts what it is given."""

from __future__ import annotations

import av


class NullSink:
    """Discards frames; counts them (useful to check a stream flows)."""

    def __init__(self) -> None:
        self.video_frames = 0
        self.audio_frames = 0
        self.connected = False

    def on_video(self, frame: av.VideoFrame, arrival: float) -> None:
        self.video_frames += 1

    def on_audio(self, frame: av.AudioFrame, arrival: float) -> None:
        self.audio_frames += 1

    def on_connection(self, connected: bool) -> None:
        self.connected = connected

    async def close(self) -> None:
        return None
