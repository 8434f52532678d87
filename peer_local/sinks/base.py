"""The sink interface: the local peer hands every decoded frame to each sink, with its arrival time."""

from __future__ import annotations

from typing import Protocol

import av


class MediaSink(Protocol):
    """Receives decoded frames on the event loop; must return quickly (heavy work goes to a thread)."""

    def on_video(self, frame: av.VideoFrame, arrival: float) -> None: ...

    def on_audio(self, frame: av.AudioFrame, arrival: float) -> None: ...

    def on_connection(self, connected: bool) -> None:
        """The remote stream started (True) or was lost (False)."""
        ...

    async def close(self) -> None: ...
