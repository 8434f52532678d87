"""``avatar bench transport``: fps, latency, A/V offset, data-channel RTT and CPU on loopback."""

from __future__ import annotations

import asyncio
import json
import secrets
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from peer_local.bench.processes import cpu_percent, cpu_sample, start_avatar, stop_process
from signaling.messages import Role
from signaling.server import SignalingService
from signaling.settings import SignalingSettings

WARMUP_S = 2.0


@dataclass
class TransportBenchConfig:
    codec: str = "VP8"
    width: int = 512
    height: int = 512
    fps: int = 25
    duration_s: float = 20.0


async def _wait_for_role(service: SignalingService, role: Role, timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        await service.server.wait_for_peer(role)


async def run_transport_bench(config: TransportBenchConfig) -> dict[str, Any]:
    """Run signaling in process and both peers as child processes; returns the result document."""
    token = secrets.token_urlsafe(16)
    env = {"AVATAR_TOKEN": token}
    workdir = Path(tempfile.mkdtemp(prefix="avatar-bench-"))
    measure_path = workdir / "local.json"
    settings = SignalingSettings.load({"host": "127.0.0.1", "port": 0, "token": token})
    async with SignalingService(settings, token) as service:
        common = ["--signaling", service.base_url, "--room", "bench", "--ice-host", "127.0.0.1"]
        remote = await start_avatar(
            "remote",
            *common,
            "--source",
            "test-pattern",
            "--codec",
            config.codec,
            "--size",
            f"{config.width}x{config.height}",
            "--fps",
            str(config.fps),
            env=env,
            log_path=str(workdir / "remote.log"),
        )
        local = None
        try:
            await _wait_for_role(service, Role.REMOTE, 30.0)
            local = await start_avatar(
                "local",
                *common,
                "--duration",
                str(config.duration_s),
                "--measure",
                str(measure_path),
                "--measure-warmup",
                str(WARMUP_S),
                "--input",
                "none",
                "--camera",
                "none",
                "--mic-out",
                "none",
                env=env,
                log_path=str(workdir / "local.log"),
            )
            await _wait_for_role(service, Role.LOCAL, 30.0)
            await asyncio.sleep(WARMUP_S + 1.0)  # connection set-up and warm-up; measured window follows
            before = {"remote": cpu_sample(remote.pid), "local": cpu_sample(local.pid)}
            started = time.monotonic()
            await asyncio.sleep(max(1.0, config.duration_s - 2.0))
            after = {"remote": cpu_sample(remote.pid), "local": cpu_sample(local.pid)}
            cpu = {name: cpu_percent(before[name], after[name]) for name in before}
            measured_s = time.monotonic() - started
            async with asyncio.timeout(config.duration_s + 30.0):
                await local.wait()
        except TimeoutError:
            return {"error": f"peers did not connect or finish in time; logs in {workdir}"}
        finally:
            if local is not None:
                await stop_process(local)
            await stop_process(remote)
    if not measure_path.exists():
        return {"error": f"the local peer wrote no measurement; logs in {workdir}"}
    measured = json.loads(measure_path.read_text())
    if "error" in measured:
        return {"error": f"{measured['error']}; logs in {workdir}"}
    return {
        "bench": "transport",
        "config": asdict(config),
        **measured,
        "cpu_percent": cpu,
        "cpu_window_s": round(measured_s, 1),
        "logs": str(workdir),
    }


def print_table(result: dict[str, Any]) -> None:
    if "error" in result:
        print(f"transport bench failed: {result['error']}")
        return
    c = result["config"]
    rows = [
        ("codec / size / fps", f"{c['codec']} {c['width']}x{c['height']} @ {c['fps']}"),
        ("video fps", f"{result['video_fps']:.2f}"),
        ("frames dropped", str(result["frames_dropped"])),
        ("video latency ms p50/p95/max", _triple(result["video_latency_ms"])),
        ("audio latency ms p50/p95/max", _triple(result["audio_latency_ms"])),
        ("A/V offset ms (audio - video)", str(result["av_offset_ms"])),
        ("data channel RTT ms p50/p95", _triple(result["datachannel_rtt_ms"])),
        ("CPU % of a core remote/local", f"{result['cpu_percent']['remote']} / {result['cpu_percent']['local']}"),
        ("max gap ms video/audio", f"{result['max_video_gap_ms']} / {result['max_audio_gap_ms']}"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def _triple(summary: dict[str, Any]) -> str:
    return " / ".join("-" if summary.get(k) is None else f"{summary[k]:.1f}" for k in ("p50", "p95", "max"))
