"""Helpers for tests with real peers: settings for loopback peers, a task that runs until stopped."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from peer_local.service import LocalPeer
from peer_local.settings import LocalSettings
from signaling.messages import Role
from signaling.server import SignalingService


def peer_fields(service: SignalingService, token: str) -> dict[str, object]:
    return {
        "signaling": service.base_url,
        "room": "t",
        "token": token,
        "ice_servers": [],
        "ice_host_addresses": ["127.0.0.1"],
        "source": "test-pattern",
    }


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
