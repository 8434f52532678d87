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

from benchmarks.harness.processes import cpu_percent, cpu_sample, open_log, start_avatar, stop_process
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
    impair: str | None = None  # e.g. "delay=50ms,loss=3%": peers in two network namespaces behind our bridge


async def _wait_for_role(service: SignalingService, role: Role, timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        await service.server.wait_for_peer(role)


def local_measure_args(config: TransportBenchConfig, measure_path: Path) -> list[str]:
    return [
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
    ]


def remote_pattern_args(config: TransportBenchConfig) -> list[str]:
    return [
        "--source",
        "test-pattern",
        "--codec",
        config.codec,
        "--size",
        f"{config.width}x{config.height}",
        "--fps",
        str(config.fps),
    ]


async def run_transport_bench(config: TransportBenchConfig) -> dict[str, Any]:
    """Run signaling in process and both peers as child processes; returns the result document."""
    if config.impair:
        return await run_impaired_transport_bench(config)
    token = secrets.token_urlsafe(16)
    env = {"AVATAR_TOKEN": token}
    workdir = Path(tempfile.mkdtemp(prefix="avatar-bench-"))
    measure_path = workdir / "local.json"
    settings = SignalingSettings.load({"host": "127.0.0.1", "port": 0, "token": token})
    async with SignalingService(settings, token) as service:
        common = ["--signaling", service.base_url, "--room", "bench", "--ice-host", "127.0.0.1"]
        remote = await start_avatar(
            "remote", *common, *remote_pattern_args(config), env=env, log_path=str(workdir / "remote.log")
        )
        local = None
        try:
            await _wait_for_role(service, Role.REMOTE, 30.0)
            local = await start_avatar(
                "local",
                *common,
                *local_measure_args(config, measure_path),
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
    measured = read_measurement(measure_path, workdir)
    if "error" in measured:
        return measured
    return {
        "bench": "transport",
        "config": asdict(config),
        **measured,
        "cpu_percent": cpu,
        "cpu_window_s": round(measured_s, 1),
        "logs": str(workdir),
    }


def read_measurement(measure_path: Path, workdir: Path) -> dict[str, Any]:
    if not measure_path.exists():
        return {"error": f"the local peer wrote no measurement; logs in {workdir}"}
    measured: dict[str, Any] = json.loads(measure_path.read_text())
    if "error" in measured:
        return {"error": f"{measured['error']}; logs in {workdir}"}
    return measured


async def run_impaired_transport_bench(config: TransportBenchConfig) -> dict[str, Any]:
    """Remote and signaling in namespace A, the local peer in B, every packet through the impairment bridge."""
    from benchmarks.harness.impairment import ImpairmentSpec
    from benchmarks.harness.netns import ImpairedNetwork, NetnsError

    assert config.impair is not None
    spec = ImpairmentSpec.parse(config.impair)
    token = secrets.token_urlsafe(16)
    env = {"AVATAR_TOKEN": token}
    workdir = Path(tempfile.mkdtemp(prefix="avatar-bench-impaired-"))
    measure_path = workdir / "local.json"
    processes: list[asyncio.subprocess.Process] = []
    try:
        async with ImpairedNetwork(spec, workdir=workdir) as net:
            signaling_url = f"http://{net.a_ip}:8765"

            async def in_namespace(namespace: str, *args: str, log: str) -> asyncio.subprocess.Process:
                process = await start_in_namespace(net, namespace, args, env, str(workdir / log))
                processes.append(process)
                return process

            await in_namespace(net.a, "signaling", "--host", net.a_ip, "--port", "8765", log="signaling.log")
            common = ["--signaling", signaling_url, "--room", "bench"]
            await in_namespace(
                net.a, "remote", *common, "--ice-host", net.a_ip, *remote_pattern_args(config), log="remote.log"
            )
            local = await in_namespace(
                net.b,
                "local",
                *common,
                "--ice-host",
                net.b_ip,
                *local_measure_args(config, measure_path),
                log="local.log",
            )
            try:
                async with asyncio.timeout(config.duration_s + 90.0):
                    await local.wait()
            except TimeoutError:
                return {"error": f"the local peer did not finish in time; logs in {workdir}"}
    except NetnsError as exc:
        return {"error": f"cannot build the impaired network: {exc}"}
    finally:
        for process in reversed(processes):
            await stop_process(process)
    measured = read_measurement(measure_path, workdir)
    if "error" in measured:
        return measured
    bridge = json.loads(net.stats_path.read_text()) if net.stats_path.exists() else {}
    return {
        "bench": "transport",
        "config": asdict(config),
        "impairment": spec.describe(),
        **measured,
        "bridge": bridge,
        "logs": str(workdir),
    }


async def start_in_namespace(
    net: Any, namespace: str, args: tuple[str, ...], env: dict[str, str], log_path: str
) -> asyncio.subprocess.Process:
    """``avatar ARGS`` inside a network namespace (``ip netns exec``)."""
    import os
    import sys

    out = open_log(log_path)
    try:
        return await asyncio.create_subprocess_exec(
            *net.exec_argv(namespace, sys.executable, "-m", "avatar", *args),
            env={**os.environ, **env},
            stdout=out,
            stderr=out,
        )
    finally:
        out.close()


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
        ("max gap ms video/audio", f"{result['max_video_gap_ms']} / {result['max_audio_gap_ms']}"),
        ("audio latency per frame ms p50/p95/max", _triple(result["audio_frame_latency_ms"])),
        ("audio recovery s (back under 100 ms)", str(result["audio_recovery_s"])),
    ]
    if "cpu_percent" in result:
        rows.append(
            ("CPU % of a core remote/local", f"{result['cpu_percent']['remote']} / {result['cpu_percent']['local']}")
        )
    if "impairment" in result:
        rows.insert(1, ("impairment (each way)", result["impairment"]))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def _triple(summary: dict[str, Any]) -> str:
    return " / ".join("-" if summary.get(k) is None else f"{summary[k]:.1f}" for k in ("p50", "p95", "max"))
