"""Records what the local peer receives to an MP4 (H.264 + AAC) in a worker thread, each frame at its RTP time
(see media_timeline.py), so the file keeps the sender's A/V alignment whatever the arrival order."""

from __future__ import annotations

import asyncio
import fractions
import logging
import queue
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, cast

import av
import numpy as np

from media.audio import mono_int16
from media.frames import AUDIO_RATE
from peer_local.sinks.media_timeline import Anchor, StreamTimeline

logger = logging.getLogger(__name__)

HOLD_S = 1.0  # frames wait this long before being written, so their anchor has seen a second more of trips
QUEUE_ITEMS = 500  # ~10 s of audio+video; beyond that video frames are dropped, never audio
VIDEO_WAIT_S = 2.0  # MP4 needs every stream before its first packet: without video this long, audio only
AUDIO_SLACK = AUDIO_RATE // 100  # 10 ms: closer than this to where it belongs, audio is written back to back
_CLOSE = object()
_MS = fractions.Fraction(1, 1000)
_AUDIO_TB = fractions.Fraction(1, AUDIO_RATE)


class _Incoming(NamedTuple):
    kind: str
    payload: av.VideoFrame | np.ndarray
    pts: int | None
    time_base: fractions.Fraction | None
    arrival: float


@dataclass
class _Received:
    kind: str  # "video" or "audio"
    payload: av.VideoFrame | np.ndarray
    arrival: float
    media_time: float
    anchor: Anchor

    @property
    def at(self) -> float:
        """Where the frame belongs on the arrival clock (by the fastest trip seen until it is written)."""
        return self.anchor.time_of(self.media_time)


class RecorderSink:
    """An MP4 of the received stream; audio gaps become silence so A/V stay aligned in the file."""

    def __init__(self, path: Path, fps: int = 25) -> None:
        self.path = path
        self.fps = fps
        self.video_frames = 0
        self.audio_samples = 0
        self.dropped_video = 0
        self._queue: queue.Queue[object] = queue.Queue(maxsize=QUEUE_ITEMS)
        self._error: BaseException | None = None
        path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(path), mode="w", format="mp4")
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    def on_video(self, frame: av.VideoFrame, arrival: float) -> None:
        try:
            self._queue.put_nowait(_Incoming("video", frame, frame.pts, frame.time_base, arrival))
        except queue.Full:
            self.dropped_video += 1

    def on_audio(self, frame: av.AudioFrame, arrival: float) -> None:
        item = _Incoming("audio", mono_int16(frame), frame.pts, frame.time_base, arrival)
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
        # frames are held for HOLD_S and written in arrival order
        self._video_stream: av.VideoStream | None = None
        self._video_decided = False
        self._last_video_pts = -1
        self._t0: float | None = None
        self._timelines = {"video": StreamTimeline(), "audio": StreamTimeline()}
        self._audio_stream = self._container.add_stream("aac", rate=AUDIO_RATE)
        self._audio_stream.layout = "mono"
        self._resampler = av.AudioResampler(format="fltp", layout="mono", rate=AUDIO_RATE, frame_size=1024)
        held: deque[_Received] = deque()
        try:
            while True:
                item = self._queue.get()
                if item is _CLOSE:
                    break
                received = self._receive(item)
                held.append(received)
                while held and self._ready(held, received.arrival):
                    self._write(held.popleft())
            while held:
                self._video_decided = True  # closing: whatever came is all there is
                self._write(held.popleft())
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

    def _receive(self, item: object) -> _Received:
        kind, payload, pts, time_base, arrival = cast(_Incoming, item)
        timeline = self._timelines[kind]
        # a frame without RTP time (never from aiortc) is placed where it arrived
        media_time = timeline.media_time(pts, time_base) if pts is not None and time_base else arrival
        return _Received(kind, payload, arrival, media_time, timeline.observe(media_time, arrival))

    def _ready(self, held: deque[_Received], now: float) -> bool:
        """The oldest held frame can be written: held long enough and, at the start, video's size known."""
        head = held[0]
        if now < head.arrival + HOLD_S:
            return False
        if not self._video_decided:
            first_video = next((r for r in held if r.kind == "video"), None)
            if first_video is not None:
                self._open_video(first_video.payload)  # type: ignore[arg-type]
            elif now - head.arrival < VIDEO_WAIT_S:
                return False
            else:
                logger.warning("no video after %.0f s: recording audio only", VIDEO_WAIT_S)
            self._video_decided = True
            self._t0 = min(r.at for r in held)
        return True

    def _write(self, received: _Received) -> None:
        if self._t0 is None:
            self._t0 = received.at
        t = received.at - self._t0
        if received.kind == "video":
            if self._video_stream is not None:
                self._write_video(received.payload, t)  # type: ignore[arg-type]
        else:
            self._write_audio(received.payload, t)  # type: ignore[arg-type]

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
        if gap > AUDIO_SLACK:  # lost packets or a pause in the stream: silence, so A/V stay aligned
            samples = np.concatenate([np.zeros(gap, dtype=np.int16), samples])
        elif gap < -AUDIO_SLACK:  # overlaps what is written (a new session's first frames): the overlap goes
            samples = samples[-gap:]
            if not samples.size:
                return
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts, frame.time_base = self.audio_samples, _AUDIO_TB
        self.audio_samples += samples.size
        # AAC's 1024 priming samples come out as a packet at pts -1024; the muxer's edit list hides them, so
        # a player's first sample is the one written at t = 0
        for chunk in self._resampler.resample(frame):
            self._mux(self._audio_stream.encode(chunk))

    def _mux(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            self._container.mux(packet)
