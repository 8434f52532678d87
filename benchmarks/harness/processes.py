"""Child processes for benchmarks and tests: run ``avatar`` subcommands and watch their CPU."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psutil


def loopback_peer_fields(signaling_url: str, room: str, token: str) -> dict[str, Any]:
    """Settings of a peer that stays on this machine: no STUN, ICE host candidates on 127.0.0.1 only, and (for
    a remote) the measurable test pattern instead of the avatar."""
    return {
        "signaling": signaling_url,
        "room": room,
        "token": token,
        "ice_servers": [],
        "ice_host_addresses": ["127.0.0.1"],
        "source": "test-pattern",
    }


@dataclass
class CpuSample:
    cpu_s: float
    wall_s: float


def cpu_sample(pid: int) -> CpuSample:
    """User+system CPU seconds of a process and its children, and the wall time."""
    process = psutil.Process(pid)
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = p.cpu_times()
            total += times.user + times.system
    return CpuSample(total, time.monotonic())


def cpu_percent(before: CpuSample, after: CpuSample) -> float:
    """Percent of one core used between two samples."""
    wall = after.wall_s - before.wall_s
    return round(100.0 * (after.cpu_s - before.cpu_s) / wall, 1) if wall > 0 else 0.0


async def start_avatar(
    *args: str,
    env: dict[str, str] | None = None,
    log_path: str | None = None,
    base_env: Mapping[str, str] | None = None,
    module: str = "avatar",
) -> asyncio.subprocess.Process:
    """Start ``avatar ARGS`` (``python -m MODULE ARGS``) with this interpreter in ``base_env`` (this process's) plus
    ``env``; output goes to ``log_path`` (or is discarded)."""
    out = open_log(log_path) if log_path else asyncio.subprocess.DEVNULL
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            *args,
            env={**(os.environ if base_env is None else base_env), **(env or {})},
            stdout=out,
            stderr=out,
        )
    finally:
        if not isinstance(out, int):
            out.close()


def environment_without_avatar_settings(keep: tuple[str, ...] = ()) -> dict[str, str]:
    """This process's environment less its ``AVATAR_*`` settings (but those in ``keep``), for a child that must
    run on its own defaults."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AVATAR_") or k in keep}


async def demo_metrics(
    *args: str,
    metrics: Path,
    log_path: Path,
    timeout_s: float,
    keep_env: tuple[str, ...] = (),
    module: str = "avatar",
) -> dict[str, Any]:
    """Run ``avatar demo ARGS --metrics-json METRICS`` (through ``python -m MODULE``, e.g. the stamped demo) on this
    machine to its end and return its metrics, or ``{"error": ...}`` naming the log when it failed."""
    process = await start_avatar(
        *("demo", "--port", "0", "--no-browser", *args, "--metrics-json", str(metrics)),
        log_path=str(log_path),
        base_env=environment_without_avatar_settings(keep_env),
        module=module,
    )
    try:
        async with asyncio.timeout(timeout_s):
            code = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return read_metrics(metrics, code, f"avatar demo {' '.join(args)} failed (exit {code}); log in {log_path}")


def read_metrics(metrics: Path, code: int, failure: str) -> dict[str, Any]:
    """A finished child's metrics JSON; ``{"error": failure}`` when it failed or wrote none."""
    if code != 0 or not metrics.exists():
        return {"error": failure}
    return dict(json.loads(metrics.read_text()))


def open_log(path: str) -> IO[bytes]:
    return open(path, "ab")


async def stop_process(process: asyncio.subprocess.Process, timeout_s: float = 10.0) -> int:
    """SIGINT, then SIGKILL if it does not exit in time; returns the exit code."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        try:
            async with asyncio.timeout(timeout_s):
                await process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode
