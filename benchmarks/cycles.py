"""``avatar bench cycles``: connect and disconnect a local peer many times; do resources return to baseline?

Signaling, the remote (test pattern) and each local peer run in this process, so one process's memory, open
file descriptors, threads and asyncio tasks show leaks on either side.
"""

from __future__ import annotations

import asyncio
import gc
import os
import secrets
import threading
import time
from typing import Any

import psutil

from benchmarks.harness.processes import loopback_peer_fields
from media.measure import linear_slope
from peer_local.service import LocalPeer
from peer_local.settings import LocalSettings
from peer_local.sinks.null import NullSink
from peer_remote.service import RemotePeer
from peer_remote.settings import RemoteSettings
from signaling.server import SignalingService
from signaling.settings import SignalingSettings

WARMUP_CYCLES = 10
RSS_EVERY = 10  # cycles between memory samples


def resources() -> dict[str, float]:
    gc.collect()
    process = psutil.Process(os.getpid())
    return {
        "rss_mib": round(process.memory_info().rss / 2**20, 1),
        "open_fds": process.num_fds(),
        # the default executor's pool threads are reused, not leaked: counted apart
        "threads": sum(1 for t in threading.enumerate() if not t.name.startswith("asyncio_")),
        "executor_threads": sum(1 for t in threading.enumerate() if t.name.startswith("asyncio_")),
        "asyncio_tasks": len(asyncio.all_tasks()),
    }


async def settled(remote: RemotePeer, baseline: dict[str, float] | None, timeout_s: float = 10.0) -> dict[str, float]:
    """Resources once the last call is torn down on both sides (no subscriber left on the remote, fds and
    tasks back to the baseline), within a bound."""
    deadline = time.monotonic() + timeout_s
    while True:
        now = {**resources(), "remote_subscribers": len(remote.sessions)}
        reference = baseline or now
        done = now["remote_subscribers"] == 0 and all(
            now[key] <= reference[key] for key in ("open_fds", "asyncio_tasks", "threads")
        )
        if done or time.monotonic() >= deadline:
            return now
        await asyncio.sleep(0.1)  # sockets close on later loop iterations: poll, bounded by the deadline


async def one_cycle(fields: dict[str, Any], timeout_s: float = 20.0) -> float:
    """Connect, receive the first video frame, disconnect; returns seconds to first frame."""
    sink = NullSink()
    peer = LocalPeer(LocalSettings.load(fields), [sink])
    stop = asyncio.Event()
    started = time.monotonic()
    task = asyncio.create_task(peer.run(stop))
    try:
        async with asyncio.timeout(timeout_s):
            session = await peer.wait_session()
            await session.media_started.wait()
        return time.monotonic() - started
    finally:
        stop.set()
        async with asyncio.timeout(timeout_s):
            await task


async def run_cycles(count: int = 200) -> dict[str, Any]:
    token = secrets.token_urlsafe(16)
    settings = SignalingSettings.load({"host": "127.0.0.1", "port": 0})
    async with SignalingService(settings, token) as service:
        fields = loopback_peer_fields(service.base_url, "cycles", token)
        remote = RemotePeer(RemoteSettings.load({**fields, "width": 160, "height": 120}))
        stop = asyncio.Event()
        remote_task = asyncio.create_task(remote.run(stop))
        try:
            async with asyncio.timeout(20):
                await remote.connected.wait()
            connect_s = [await one_cycle(fields) for _ in range(WARMUP_CYCLES)]
            baseline = await settled(remote, None)
            rss_curve: list[tuple[int, float]] = [(WARMUP_CYCLES, baseline["rss_mib"])]
            for cycle in range(WARMUP_CYCLES + 1, count + 1):
                connect_s.append(await one_cycle(fields))
                if cycle % RSS_EVERY == 0:
                    rss_curve.append((cycle, resources()["rss_mib"]))
            after = await settled(remote, baseline)
        finally:
            stop.set()
            async with asyncio.timeout(20):
                await remote_task
    connect_sorted = sorted(connect_s)
    return {
        "bench": "cycles",
        "cycles": count,
        "baseline_after_warmup": baseline,
        "after": after,
        "growth": {key: round(after[key] - baseline[key], 1) for key in baseline},
        "rss_mib_by_cycle": rss_curve,
        # a leak keeps growing; allocator warm-up flattens: the slope over the second half tells them apart
        "rss_mib_per_100_cycles_second_half": rss_slope_per_100(rss_curve[len(rss_curve) // 2 :]),
        "first_frame_s": {
            "p50": round(connect_sorted[len(connect_sorted) // 2], 3),
            "p95": round(connect_sorted[int(len(connect_sorted) * 0.95) - 1], 3),
        },
    }


def rss_slope_per_100(points: list[tuple[int, float]]) -> float | None:
    slope = linear_slope([float(cycle) for cycle, _ in points], [rss for _, rss in points])
    return None if slope is None else round(slope * 100, 2)


def print_cycles_table(result: dict[str, Any]) -> None:
    base, after = result["baseline_after_warmup"], result["after"]
    print(f"{result['cycles']} connect/disconnect cycles (first {WARMUP_CYCLES} are warm-up)")
    for key in base:
        print(f"  {key:<14} {base[key]:>8} -> {after[key]:>8}  ({result['growth'][key]:+})")
    print(f"  connect -> first frame s p50/p95: {result['first_frame_s']['p50']} / {result['first_frame_s']['p95']}")
    print(f"  RSS growth over the second half: {result['rss_mib_per_100_cycles_second_half']} MiB per 100 cycles")
