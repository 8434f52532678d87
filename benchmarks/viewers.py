"""``avatar bench viewers``: what viewers cost the avatar when it serves them itself (today's fan-out, one encode
per viewer; the viewers join through signaling's WHEP front) and when it publishes once over WHIP to Janus, which
serves them (VideoRoom subscribers).

The avatar (``avatar remote``, test pattern) is a child process whose CPU is sampled over the measured window;
the viewers run in this process, the same receiving peer either way (the local peer's low-latency buffers), and
read the test pattern's stamps (fps, latency: ``TestPatternMeter``, as ``bench transport`` does). The 1-viewer
direct run is the baseline each CPU figure is given against.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.harness.janus import JanusSfu, JanusSubscriber, SfuUnavailableError, running_sfu, sfu_problem
from benchmarks.harness.processes import cpu_percent, cpu_sample, start_avatar, stop_process
from benchmarks.harness.receiver import ReceivingPeer
from benchmarks.soak import WindowedMeter
from media.rtc.ice import pin_host_addresses
from signaling.messages import Role
from signaling.server import SignalingService
from signaling.settings import SignalingSettings
from signaling.tokens import issue_token

WARMUP_S = 3.0
START_TIMEOUT_S = 60.0


@dataclass
class ViewersBenchConfig:
    counts: tuple[int, ...] = (1, 3, 10)
    width: int = 320
    height: int = 240
    fps: int = 25
    codec: str = "VP8"
    duration_s: float = 10.0  # measured seconds per run, after the warm-up
    janus: bool = True


class ViewerMeter(WindowedMeter):
    """One viewer's meter (per window), which also says when its first frame arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.first_frame = asyncio.Event()

    def on_video(self, frame: Any, arrival: float) -> None:
        super().on_video(frame, arrival)
        self.first_frame.set()


class ViewerGroup:
    """N viewers of one avatar, each with its own meter."""

    def __init__(self, count: int) -> None:
        self.meters = [ViewerMeter() for _ in range(count)]

    async def wait_for_frames(self, timeout_s: float) -> None:
        """Until every viewer has decoded a frame; bounded."""
        async with asyncio.timeout(timeout_s):
            await asyncio.gather(*(meter.first_frame.wait() for meter in self.meters))

    def window(self) -> list[dict[str, Any]]:
        return [meter.take() for meter in self.meters]


@contextlib.asynccontextmanager
async def direct_viewers(service: SignalingService, room: str, token: str, count: int) -> AsyncIterator[ViewerGroup]:
    """Viewers of the avatar itself: WHEP players, each a subscriber of the avatar as a browser viewer is."""
    group = ViewerGroup(count)
    peers = [ReceivingPeer(m.on_video, m.on_audio) for m in group.meters]
    try:
        for peer in peers:
            await peer.watch_whep(f"{service.base_url}/whep/{room}", issue_token(token, room, "viewer", 3600))
        yield group
    finally:
        for peer in peers:
            await peer.close()


@contextlib.asynccontextmanager
async def janus_viewers(sfu: JanusSfu, count: int) -> AsyncIterator[ViewerGroup]:
    """Viewers of Janus's copy: VideoRoom subscribers."""
    group = ViewerGroup(count)
    publisher = await sfu.publisher_id(START_TIMEOUT_S)
    subscribers = [JanusSubscriber(sfu.janus_url, publisher, m.on_video, m.on_audio) for m in group.meters]
    try:
        for subscriber in subscribers:
            await subscriber.start()
        yield group
    finally:
        for subscriber in subscribers:
            await subscriber.close()


async def _measure(
    mode: str,
    count: int,
    config: ViewersBenchConfig,
    service: SignalingService,
    token: str,
    workdir: Path,
    sfu: JanusSfu | None,
) -> dict[str, Any]:
    room = f"viewers-{mode}-{count}"
    args = ["--signaling", service.base_url, "--room", room, "--ice-host", "127.0.0.1", "--source", "test-pattern"]
    args += ["--size", f"{config.width}x{config.height}", "--fps", str(config.fps), "--codec", config.codec]
    if sfu is not None:
        args += ["--ice-host", sfu.network.host_ip, "--publish-whip", sfu.whip_url]
    env = {"AVATAR_TOKEN": token, "AVATAR_MAX_SUBSCRIBERS": str(count + 2)}
    if sfu is not None:
        env["AVATAR_PUBLISH_TOKEN"] = sfu.endpoint_token
    avatar = await start_avatar("remote", *args, env=env, log_path=str(workdir / f"{room}.log"))
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            await service.server.wait_for_peer(Role.REMOTE, room)
        viewers = janus_viewers(sfu, count) if sfu is not None else direct_viewers(service, room, token, count)
        async with viewers as group:
            await group.wait_for_frames(START_TIMEOUT_S)
            await asyncio.sleep(WARMUP_S)  # a measurement window, not a synchronisation
            group.window()
            before = cpu_sample(avatar.pid)
            sfu_before = cpu_sample(sfu.janus.pid) if sfu is not None and sfu.janus else None
            started = time.monotonic()
            await asyncio.sleep(config.duration_s)
            after = cpu_sample(avatar.pid)
            sfu_after = cpu_sample(sfu.janus.pid) if sfu is not None and sfu.janus else None
            window_s = time.monotonic() - started
            reports = group.window()
    except TimeoutError:
        return {"mode": mode, "viewers": count, "error": f"did not start in time; log in {workdir / room}.log"}
    finally:
        await stop_process(avatar)
    fps = [float(r["video_fps"]) for r in reports]
    cpu = cpu_percent(before, after)
    p95 = [r["video_latency_ms"]["p95"] for r in reports if r["video_latency_ms"]["p95"] is not None]
    run: dict[str, Any] = {
        "mode": mode,
        "viewers": count,
        "avatar_cpu_percent": round(cpu, 1),
        # CPU per frame delivered to a viewer: what one more viewer costs, whatever the frame rate reached
        "avatar_cpu_ms_per_viewer_frame": round(cpu * 10 / sum(fps), 2) if sum(fps) else None,
        "fps_min": round(min(fps), 2),
        "fps_median": round(statistics.median(fps), 2),
        "latency_p95_ms_median": round(statistics.median(p95), 1) if p95 else None,
        "latency_p95_ms_max": round(max(p95), 1) if p95 else None,
        "frames_dropped": sum(int(r["frames_dropped"]) for r in reports),
        "window_s": round(window_s, 1),
        "per_viewer": [{"video_fps": r["video_fps"], "video_latency_ms": r["video_latency_ms"]} for r in reports],
    }
    if sfu_before is not None and sfu_after is not None:
        run["janus_cpu_percent"] = round(cpu_percent(sfu_before, sfu_after), 1)
    return run


async def run_viewers_bench(config: ViewersBenchConfig) -> dict[str, Any]:
    """Every count directly, then (if Janus can run here) every count through Janus; the result document."""
    token = secrets.token_urlsafe(32)
    load_before = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="avatar-bench-viewers-"))
    runs: list[dict[str, Any]] = []
    janus_note: str | None = None
    async with SignalingService(SignalingSettings.load({"host": "127.0.0.1", "port": 0}), token) as service:
        pin_host_addresses(["127.0.0.1"])
        for count in config.counts:
            runs.append(await _measure("direct", count, config, service, token, workdir, None))
        janus_note = sfu_problem() if config.janus else "skipped (--no-janus)"
        if janus_note is None:
            try:
                async with running_sfu(workdir / "sfu") as sfu:
                    pin_host_addresses(["127.0.0.1", sfu.network.host_ip])
                    for count in config.counts:
                        runs.append(await _measure("janus", count, config, service, token, workdir, sfu))
            except SfuUnavailableError as exc:
                janus_note = str(exc)
            finally:
                pin_host_addresses(["127.0.0.1"])
    baseline = next((r for r in runs if r["mode"] == "direct" and r["viewers"] == 1 and "error" not in r), None)
    for run in runs:
        if baseline and "error" not in run and baseline["avatar_cpu_percent"]:
            run["avatar_cpu_vs_direct_1"] = round(run["avatar_cpu_percent"] / baseline["avatar_cpu_percent"], 2)
    return {
        "bench": "viewers",
        "config": asdict(config),
        "runs": runs,
        # other work on the machine takes CPU from the avatar: with a high load its figures are a lower bound
        "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "cpu_count": os.cpu_count(),
        **({"janus": janus_note} if janus_note else {}),
        "logs": str(workdir),
    }


def print_viewers_table(result: dict[str, Any]) -> None:
    c = result["config"]
    print(f"avatar: test pattern {c['codec']} {c['width']}x{c['height']} @ {c['fps']} fps; {c['duration_s']:g} s each")
    header = (
        "mode",
        "viewers",
        "avatar CPU %",
        "vs direct 1",
        "CPU ms/viewer-frame",
        "fps min/median",
        "latency p95 ms median/max",
        "Janus CPU %",
    )
    print("  ".join(header))
    for run in result["runs"]:
        if "error" in run:
            print(f"{run['mode']:<6}  {run['viewers']:>7}  failed: {run['error']}")
            continue
        print(
            f"{run['mode']:<6}  {run['viewers']:>7}  {run['avatar_cpu_percent']:>12}  "
            f"{run.get('avatar_cpu_vs_direct_1', '-'):>11}  "
            f"{run['avatar_cpu_ms_per_viewer_frame']:>19}  "
            f"{run['fps_min']:>6} / {run['fps_median']:<5}  "
            f"{run['latency_p95_ms_median']} / {run['latency_p95_ms_max']}  "
            f"{run.get('janus_cpu_percent', '-')}"
        )
    load = result["load_average_1min"]
    print(f"load average (1 min) {load['before']} -> {load['after']} on {result['cpu_count']} CPUs")
    if "janus" in result:
        print(f"Janus: {result['janus']}")
