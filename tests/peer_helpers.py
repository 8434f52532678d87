"""Helpers for tests with real peers: settings for loopback peers, a task that runs until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from benchmarks.harness.processes import loopback_peer_fields, start_avatar
from peer_local.service import LocalPeer
from peer_local.settings import LocalSettings
from signaling.messages import Role
from signaling.server import SignalingService


def peer_fields(service: SignalingService, token: str) -> dict[str, object]:
    return loopback_peer_fields(service.base_url, "t", token)


async def start_test_pattern_remote(service: SignalingService, token: str, log: Path) -> asyncio.subprocess.Process:
    """``avatar remote`` in a child process (so it can be killed or frozen), streaming the test pattern."""
    return await start_avatar(
        "remote",
        "--source",
        "test-pattern",
        "--signaling",
        service.base_url,
        "--room",
        "t",
        "--ice-host",
        "127.0.0.1",
        "--size",
        "320x240",
        env={"AVATAR_TOKEN": token},
        log_path=str(log),
    )


@contextlib.asynccontextmanager
async def running(coro_factory: object) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(coro_factory(stop))  # type: ignore[operator]
    try:
        yield stop
    finally:
        stop.set()
        async with asyncio.timeout(15):
            await task


def local_peer(
    service: SignalingService, token: str, sink: object, role: Role = Role.LOCAL, **extra: object
) -> LocalPeer:
    settings = LocalSettings.load({**peer_fields(service, token), **extra})
    return LocalPeer(settings, [sink], role=role)  # type: ignore[list-item]


ROOT = Path(__file__).resolve().parent.parent


async def run_avatar(*args: str, timeout_s: float, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """``avatar ARGS`` in a child process from the repository root, to its end (killed after ``timeout_s``):
    exit code, stdout, stderr."""
    child = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "avatar", *args),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(timeout_s):
            out, err = await child.communicate()
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    assert child.returncode is not None
    return child.returncode, out.decode(), err.decode()
