"""Reads the test pattern at a receiver: video and audio latency, frame loss, fps, A/V offset."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import av
import numpy as np

from media.audio import mono_int16
from media.frames import AUDIO_RATE
from media.test_pattern import ToneOnsetDetector, luma_plane, read_stamp


def percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def summary_ms(values: list[float]) -> dict[str, float | None]:
    return {
        "p50": _round(percentile(values, 50)),
        "p95": _round(percentile(values, 95)),
        "max": _round(max(values) if values else None),
        "count": len(values),
    }


def linear_slope(xs: list[float], values: list[float | None]) -> float | None:
    """Least-squares slope of ``values`` against ``xs`` (None values skipped; None with fewer than 3 points):
    how fast a series drifts over a long run."""
    points = [(x, v) for x, v in zip(xs, values, strict=True) if v is not None]
    if len(points) < 3:
        return None
    x, v = np.array(points, dtype=float).T
    return float(np.polyfit(x, v, 1)[0])


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


@dataclass
class TestPatternMeter:
    """A sink that measures the test pattern as it arrives (all times are epoch seconds)."""

    __test__ = False

    fps: int = 25
    video_latency_ms: list[float] = field(default_factory=list)
    audio_latency_ms: list[float] = field(default_factory=list)
    av_offset_ms: list[float] = field(default_factory=list)
    frames: int = 0
    unreadable: int = 0
    frames_dropped: int = 0
    sizes: set[tuple[int, int]] = field(default_factory=set)
    audio_frames: int = 0
    max_audio_gap_ms: float = 0.0
    max_video_gap_ms: float = 0.0
    indices: list[int] = field(default_factory=list)
    first_arrival: float | None = None
    last_arrival: float | None = None
    connected: bool = False
    _last_index: int | None = None
    _last_video_arrival: float | None = None
    _last_audio_arrival: float | None = None
    _flash_send: dict[int, float] = field(default_factory=dict)
    _flash_arrival: dict[int, float] = field(default_factory=dict)
    _onsets: list[float] = field(default_factory=list)
    _onset_offsets: list[float] = field(default_factory=list)  # the clock offset of the frame holding each onset
    _audio_offsets: list[tuple[float, float]] = field(default_factory=list)  # (arrival, arrival - media time)
    _calibration: list[float] = field(default_factory=list)  # sender clock estimates, one per matched onset
    _detector: ToneOnsetDetector = field(default_factory=ToneOnsetDetector)

    def on_video(self, frame: av.VideoFrame, arrival: float) -> None:
        self.sizes.add((frame.width, frame.height))
        stamp = read_stamp(luma_plane(frame), now=arrival)
        if self._last_video_arrival is not None:
            self.max_video_gap_ms = max(self.max_video_gap_ms, (arrival - self._last_video_arrival) * 1000)
        self._last_video_arrival = arrival
        if stamp is None:
            self.unreadable += 1
            return
        self.frames += 1
        self.first_arrival = self.first_arrival or arrival
        self.last_arrival = arrival
        self.indices.append(stamp.index)
        if self._last_index is not None and stamp.index > self._last_index + 1:
            self.frames_dropped += stamp.index - self._last_index - 1
        self._last_index = stamp.index
        self.video_latency_ms.append((arrival - stamp.send_time) * 1000)
        if stamp.index % self.fps == 0:
            second = stamp.index // self.fps
            self._flash_send[second] = stamp.send_time
            self._flash_arrival[second] = arrival

    def on_audio(self, frame: av.AudioFrame, arrival: float) -> None:
        samples = mono_int16(frame)
        self.audio_frames += 1
        if self._last_audio_arrival is not None:
            self.max_audio_gap_ms = max(self.max_audio_gap_ms, (arrival - self._last_audio_arrival) * 1000)
        self._last_audio_arrival = arrival
        offset = arrival - float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base else None
        if offset is not None:
            self._audio_offsets.append((arrival, offset))
        onset = self._detector.feed(samples)
        if onset is not None:
            self._onsets.append(arrival + onset / AUDIO_RATE)
            self._onset_offsets.append(offset if offset is not None else float("nan"))

    def on_connection(self, connected: bool) -> None:
        self.connected = connected

    async def close(self) -> None:
        return None

    def match_onsets(self) -> None:
        """Pair each tone onset with the flash of the same second (the latest flash sent before it)."""
        seconds = sorted(self._flash_send)
        sends = [self._flash_send[s] for s in seconds]
        self.audio_latency_ms.clear()
        self.av_offset_ms.clear()
        self._calibration.clear()
        for onset, frame_offset in zip(self._onsets, self._onset_offsets, strict=True):
            i = bisect.bisect_right(sends, onset) - 1
            if i < 0:
                continue
            latency = (onset - sends[i]) * 1000
            if latency > 900:  # that second's flash was lost: no pairing
                continue
            self.audio_latency_ms.append(latency)
            self.av_offset_ms.append((onset - self._flash_arrival[seconds[i]]) * 1000)
            if frame_offset == frame_offset:  # not NaN
                self._calibration.append(frame_offset - latency / 1000)

    def audio_frame_latency_ms(self) -> list[tuple[float, float]]:
        """Latency of every audio frame: its clock offset, calibrated by the once-a-second tone measurement."""
        if not self._calibration:
            return []
        sender_clock = float(np.median(self._calibration))
        return [(arrival, (offset - sender_clock) * 1000) for arrival, offset in self._audio_offsets]

    def audio_recovery(self, threshold_ms: float = 100.0) -> tuple[float, int]:
        """(longest stretch in seconds with audio latency above ``threshold_ms``, number of such stretches)."""
        longest, episodes, started = 0.0, 0, None
        series = self.audio_frame_latency_ms()
        for arrival, latency in series:
            if latency > threshold_ms and started is None:
                started, episodes = arrival, episodes + 1
            elif latency <= threshold_ms and started is not None:
                longest, started = max(longest, arrival - started), None
        if started is not None and series:
            longest = max(longest, series[-1][0] - started)
        return longest, episodes

    @property
    def video_fps(self) -> float:
        if self.first_arrival is None or self.last_arrival is None or self.frames < 2:
            return 0.0
        return (self.frames - 1) / (self.last_arrival - self.first_arrival)

    def report(self) -> dict[str, object]:
        self.match_onsets()
        recovery, episodes = self.audio_recovery()
        return {
            "video_fps": round(self.video_fps, 2),
            "frames": self.frames,
            "frames_dropped": self.frames_dropped,
            "unreadable_frames": self.unreadable,
            "video_latency_ms": summary_ms(self.video_latency_ms),
            "audio_latency_ms": summary_ms(self.audio_latency_ms),
            "av_offset_ms": _round(percentile(self.av_offset_ms, 50)),
            "av_offset_ms_all": summary_ms(self.av_offset_ms),
            "max_video_gap_ms": round(self.max_video_gap_ms, 1),
            "max_freeze_ms": round(self.max_video_gap_ms, 1),
            "audio_frame_latency_ms": summary_ms([latency for _, latency in self.audio_frame_latency_ms()]),
            "audio_recovery_s": round(recovery, 2),
            "audio_latency_episodes_over_100ms": episodes,
            "max_audio_gap_ms": round(self.max_audio_gap_ms, 1),
        }
