"""``avatar bench soak``: one long call (default one hour); latency, A/V offset, queues and memory per window.

Signaling, the remote (test pattern, 512x512 @ 25) and the local peer run in this process so the sender's
queues and the process memory can be read directly. The result holds one sample per window and, for each
series, its slope per hour: a flat call has slopes near zero.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from typing import Any

import psutil

from benchmarks.harness.processes import loopback_peer_fields
from media.measure import TestPatternMeter, linear_slope
from peer_local.service import LocalPeer
from peer_local.settings import LocalSettings
from peer_remote.service import RemotePeer
from peer_remote.settings import RemoteSettings
from signaling.server import SignalingService
from signaling.settings import SignalingSettings

SERIES = (
    "video_p50_ms",
    "video_p95_ms",
    "audio_p50_ms",
    "av_offset_ms",
    "rss_mib",
    "video_queued_max",
    "audio_queued_max",
)


class WindowedMeter:
    """A sink that hands each window's frames to a fresh :class:`TestPatternMeter`."""

    def __init__(self) -> None:
        self.meter = TestPatternMeter()

    def on_video(self, frame: Any, arrival: float) -> None:
        self.meter.on_video(frame, arrival)

    def on_audio(self, frame: Any, arrival: float) -> None:
        self.meter.on_audio(frame, arrival)

    def on_connection(self, connected: bool) -> None:
        self.meter.on_connection(connected)

    async def close(self) -> None:
        return None

    def take(self) -> dict[str, Any]:
        meter, self.meter = self.meter, TestPatternMeter()
        return meter.report()


def slope_per_hour(times_s: list[float], values: list[float | None]) -> float | None:
    slope = linear_slope([t / 3600.0 for t in times_s], values)
    return None if slope is None else round(slope, 3)


async def run_soak(duration_s: float = 3600.0, window_s: float = 60.0) -> dict[str, Any]:
    token = secrets.token_urlsafe(16)
    process = psutil.Process(os.getpid())
    settings = SignalingSettings.load({"host": "127.0.0.1", "port": 0})
    async with SignalingService(settings, token) as service:
        fields = loopback_peer_fields(service.base_url, "soak", token)
        remote = RemotePeer(RemoteSettings.load(fields))
        meter = WindowedMeter()
        local = LocalPeer(LocalSettings.load(fields), [meter])
        stop = asyncio.Event()
        tasks = [asyncio.create_task(remote.run(stop)), asyncio.create_task(local.run(stop))]
        samples: list[dict[str, Any]] = []
        try:
            async with asyncio.timeout(30):
                session = await local.wait_session()
                await session.media_started.wait()
            await asyncio.sleep(2.0)  # warm-up, then windows
            meter.take()
            started = time.monotonic()
            while time.monotonic() - started < duration_s:
                await asyncio.sleep(min(window_s, duration_s - (time.monotonic() - started)))
                report = meter.take()
                queues = remote.stream.queue_stats()
                samples.append(
                    {
                        "t_s": round(time.monotonic() - started, 1),
                        "video_fps": report["video_fps"],
                        "video_p50_ms": report["video_latency_ms"]["p50"],  # type: ignore[index]
                        "video_p95_ms": report["video_latency_ms"]["p95"],  # type: ignore[index]
                        "audio_p50_ms": report["audio_latency_ms"]["p50"],  # type: ignore[index]
                        "av_offset_ms": report["av_offset_ms"],
                        "frames_dropped": report["frames_dropped"],
                        "rss_mib": round(process.memory_info().rss / 2**20, 1),
                        **queues,
                        "sessions": local.sessions_started,
                    }
                )
        finally:
            stop.set()
            async with asyncio.timeout(30):
                await asyncio.gather(*tasks)
    times = [s["t_s"] for s in samples]
    return {
        "bench": "soak",
        "duration_s": duration_s,
        "window_s": window_s,
        "samples": samples,
        "slope_per_hour": {name: slope_per_hour(times, [s[name] for s in samples]) for name in SERIES},
        "first": samples[0] if samples else None,
        "last": samples[-1] if samples else None,
        "reconnects": (samples[-1]["sessions"] - 1) if samples else None,
    }


def print_soak_table(result: dict[str, Any]) -> None:
    first, last = result["first"], result["last"]
    if not first:
        print("soak: no samples")
        return
    print(f"soak {result['duration_s']:.0f} s in {len(result['samples'])} windows of {result['window_s']:.0f} s")
    for name in SERIES:
        print(
            f"  {name:<18} first {first[name]!s:>8}  last {last[name]!s:>8}  slope/h {result['slope_per_hour'][name]}"
        )
    print(f"  reconnects {result['reconnects']}; frames dropped (last window) {last['frames_dropped']}")
