"""Helpers for tests with real peers: settings for loopback peers, a task that runs until stopped."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from peer_local.bench.processes import loopback_peer_fields, start_avatar
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
