"""Records what the local peer receives to an MP4 (H.264 + AAC), timed by arrival, in a worker thread."""

from __future__ import annotations

import asyncio
import fractions
import logging
import queue
import threading
from pathlib import Path
from typing import Any, cast

import av
import numpy as np

from media.audio import mono_int16
from media.frames import AUDIO_RATE

logger = logging.getLogger(__name__)

QUEUE_ITEMS = 500  # ~10 s of audio+video; beyond that video frames are dropped, never audio
_CLOSE = object()
_MS = fractions.Fraction(1, 1000)
_AUDIO_TB = fractions.Fraction(1, AUDIO_RATE)


class RecorderSink:
    """An MP4 of the received stream; audio gaps become silence so A/V stay aligned in the file."""

    def __init__(self, path: Path, fps: int = 25) -> None:
        self.path = path
        self.fps = fps
        self.video_frames = 0
        self.audio_samples = 0
        self.dropped_video = 0
        self._queue: queue.Queue[object] = queue.Queue(maxsize=QUEUE_ITEMS)
        self._t0: float | None = None
        self._error: BaseException | None = None
        path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(path), mode="w", format="mp4")
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    def _origin(self, arrival: float) -> float:
        if self._t0 is None:
            self._t0 = arrival
        return arrival - self._t0

    def on_video(self, frame: av.VideoFrame, arrival: float) -> None:
        try:
            self._queue.put_nowait(("video", frame, self._origin(arrival)))
        except queue.Full:
            self.dropped_video += 1

    def on_audio(self, frame: av.AudioFrame, arrival: float) -> None:
        item = ("audio", mono_int16(frame), self._origin(arrival))
        try:
            self._queue.put(item, timeout=1.0)
        except queue.Full:
            logger.error("recorder is not keeping up; audio lost")

    def on_connection(self, connected: bool) -> None:
        return None

    async def close(self) -> None:
        """Flush and finish the file (waits for the writer thread)."""
        await asyncio.get_running_loop().run_in_executor(None, self._queue.put, _CLOSE)
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 30.0)
        if self._error is not None:
            logger.error("recording %s failed: %s", self.path, self._error)
        else:
            logger.info(
                "recorded %s: %d video frames, %.1f s audio",
                self.path,
                self.video_frames,
                self.audio_samples / AUDIO_RATE,
            )

    # -- writer thread ----------------------------------------------------------------------------------

    def _run(self) -> None:
        # MP4 needs every stream before the first packet: hold audio until the first video frame
        # gives the size (or 2 s pass without video, then the file is audio-only).
        self._video_stream: av.VideoStream | None = None
        self._video_decided = False
        self._last_video_pts = -1
        self._audio_stream = self._container.add_stream("aac", rate=AUDIO_RATE)
        self._audio_stream.layout = "mono"
        self._resampler = av.AudioResampler(format="fltp", layout="mono", rate=AUDIO_RATE, frame_size=1024)
        pending: list[tuple[np.ndarray, float]] = []
        try:
            while True:
                item = self._queue.get()
                if item is _CLOSE:
                    break
                kind, payload, t = cast(tuple[str, Any, float], item)
                if kind == "video":
                    if not self._video_decided:
                        self._open_video(payload)
                        for samples, at in pending:
                            self._write_audio(samples, at)
                        pending.clear()
                    if self._video_stream is not None:
                        self._write_video(payload, t)
                elif self._video_decided:
                    self._write_audio(payload, t)
                else:
                    pending.append((payload, t))
                    if len(pending) * 0.02 > 2.0:
                        logger.warning("no video after 2 s: recording audio only")
                        self._video_decided = True
                        for samples, at in pending:
                            self._write_audio(samples, at)
                        pending.clear()
            self._video_decided = True
            for samples, at in pending:
                self._write_audio(samples, at)
            for chunk in self._resampler.resample(None):
                self._mux(self._audio_stream.encode(chunk))
            self._mux(self._audio_stream.encode(None))
            if self._video_stream is not None:
                self._mux(self._video_stream.encode(None))
        except BaseException as exc:  # the thread must always close the file
            self._error = exc
            logger.exception("recorder failed")
        finally:
            self._container.close()

    def _open_video(self, first: av.VideoFrame) -> None:
        stream = self._container.add_stream("libx264", rate=self.fps)
        stream.width, stream.height = first.width, first.height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = _MS
        stream.options = {"preset": "veryfast"}
        self._video_stream = stream
        self._video_decided = True

    def _write_video(self, frame: av.VideoFrame, t: float) -> None:
        stream = self._video_stream
        assert stream is not None
        pts = max(int(round(t * 1000)), self._last_video_pts + 1)
        self._last_video_pts = pts
        out = frame.reformat(width=stream.width, height=stream.height, format="yuv420p")
        out.pts, out.time_base = pts, _MS
        self._mux(stream.encode(out))
        self.video_frames += 1

    def _write_audio(self, samples: np.ndarray, t: float) -> None:
        gap = int(round(t * AUDIO_RATE)) - self.audio_samples
        if gap > AUDIO_RATE // 10:  # more than 100 ms missing: fill with silence
            samples = np.concatenate([np.zeros(gap, dtype=np.int16), samples])
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts, frame.time_base = self.audio_samples, _AUDIO_TB
        self.audio_samples += samples.size
        for chunk in self._resampler.resample(frame):
            self._mux(self._audio_stream.encode(chunk))

    def _mux(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            self._container.mux(packet)
