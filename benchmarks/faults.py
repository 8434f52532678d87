"""Fault recovery figures: how fast the local peer notices a lost avatar and resumes after its return.

Scenarios (each run --repeat times): the remote killed with -9 and restarted; the remote frozen (SIGSTOP) and
thawed; the signaling server stopped and restarted mid-call. Prints a table; --json PATH writes the figures.

    uv run python benchmarks/faults.py --repeat 5 --json artifacts/bench-faults.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import socket
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks.harness.processes import loopback_peer_fields, start_avatar, stop_process
from peer_local.service import LocalPeer
from peer_local.settings import LocalSettings
from signaling.messages import Role
from signaling.server import SignalingService
from signaling.settings import SignalingSettings


class Timeline:
    """A sink recording when frames arrive and when the connection comes and goes."""

    def __init__(self) -> None:
        self.frames: list[float] = []
        self.connection: list[tuple[float, bool]] = []
        self.changed = asyncio.Event()

    def on_video(self, frame: Any, arrival: float) -> None:
        self.frames.append(time.monotonic())
        self.changed.set()

    def on_audio(self, frame: Any, arrival: float) -> None:
        return None

    def on_connection(self, connected: bool) -> None:
        self.connection.append((time.monotonic(), connected))
        self.changed.set()

    async def close(self) -> None:
        return None

    async def until(self, predicate: Any, timeout_s: float = 30.0) -> float:
        async with asyncio.timeout(timeout_s):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()
        return time.monotonic()

    def frames_after(self, t: float) -> int:
        return sum(1 for f in self.frames if f > t)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def remote(url: str, token: str, log: Path) -> asyncio.subprocess.Process:
    args = ["remote", "--source", "test-pattern", "--signaling", url, "--room", "f", "--ice-host", "127.0.0.1"]
    return await start_avatar(*args, "--size", "320x240", env={"AVATAR_TOKEN": token}, log_path=str(log))


async def scenario(kind: str, workdir: Path) -> dict[str, float]:
    token = secrets.token_urlsafe(16)
    settings = SignalingSettings.load({"host": "127.0.0.1", "port": free_port()})
    service = SignalingService(settings, token)
    await service.start()
    timeline = Timeline()
    fields = loopback_peer_fields(service.base_url, "f", token)
    local = LocalPeer(LocalSettings.load(fields), [timeline])
    stop = asyncio.Event()
    proc = await remote(service.base_url, token, workdir / f"{kind}-1.log")
    task = asyncio.create_task(local.run(stop))
    result: dict[str, float] = {}
    try:
        await timeline.until(lambda: len(timeline.frames) > 25)
        lost = time.monotonic()
        if kind == "kill-9":
            proc.kill()
            await proc.wait()
        elif kind == "sigstop":
            os.kill(proc.pid, signal.SIGSTOP)
        else:
            await service.stop()
        if kind != "signaling-restart":
            noticed = await timeline.until(lambda: timeline.connection[-1][1] is False)
            result["notice_s"] = noticed - lost
        else:
            await asyncio.sleep(1.0)  # one second without signaling; media should not care
            result["frames_during_outage_per_s"] = timeline.frames_after(lost) / (time.monotonic() - lost)
        if kind == "kill-9":
            proc = await remote(service.base_url, token, workdir / f"{kind}-2.log")
            async with asyncio.timeout(30):
                await service.server.wait_for_peer(Role.REMOTE)
        elif kind == "sigstop":
            os.kill(proc.pid, signal.SIGCONT)
        else:
            service = SignalingService(settings, token)
            await service.start()
        back = time.monotonic()
        if kind == "signaling-restart":
            async with asyncio.timeout(30):
                await service.server.wait_for_peer(Role.LOCAL)
                await service.server.wait_for_peer(Role.REMOTE)
            result["rejoin_s"] = time.monotonic() - back
        count = len(timeline.frames)
        resumed = await timeline.until(lambda: any(f > back for f in timeline.frames[count - 1 :]))
        result["resume_s"] = resumed - back
        result["camera_outages"] = sum(1 for _, up in timeline.connection if not up)
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
        if proc.returncode is None:
            os.kill(proc.pid, signal.SIGCONT)
        await stop_process(proc)
        await service.stop()
    return result


async def main(repeat: int, json_path: Path | None) -> None:
    workdir = Path("/tmp/avatar-bench-faults")
    await asyncio.to_thread(workdir.mkdir, exist_ok=True)
    runs: dict[str, list[dict[str, float]]] = {}
    for kind in ("kill-9", "sigstop", "signaling-restart"):
        runs[kind] = [await scenario(kind, workdir) for _ in range(repeat)]
    summary = {
        kind: {key: round(max(r[key] for r in results), 3) for key in results[0]} for kind, results in runs.items()
    }
    medians = {
        kind: {key: round(statistics.median(r[key] for r in results), 3) for key in results[0]}
        for kind, results in runs.items()
    }
    for kind in runs:
        print(f"{kind:<18} median {medians[kind]}  worst {summary[kind]}")
    if json_path:
        document = {"bench": "faults", "repeat": repeat, "median": medians, "worst": summary, "runs": runs}
        await asyncio.to_thread(write_json, json_path, document)
        print(f"wrote {json_path}")


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    asyncio.run(main(args.repeat, args.json))
