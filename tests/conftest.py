"""Shared fixtures: a real signaling server on 127.0.0.1, ICE pinned to loopback, a private PulseAudio."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.harness.page_capture import CHROMIUM_ARGS
from benchmarks.harness.sink_capture import PrivatePulseAudio
from media.rtc import patches
from media.rtc.ice import pin_host_addresses
from peer_remote.service import RemotePeer
from peer_remote.settings import RemoteSettings
from signaling.server import SignalingService
from signaling.settings import SignalingSettings
from tests.fish_speech_stand_in import FishSpeechStandIn
from tests.peer_helpers import peer_fields, running

ARTIFACTS: Path = Path(os.environ.get("AVATAR_TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / "artifacts"))


@pytest.fixture(autouse=True, scope="session")
def _ice_on_loopback() -> None:
    """No test traffic leaves the machine: ICE host candidates on 127.0.0.1 only."""
    pin_host_addresses(["127.0.0.1"])
    patches.install()


# threads of ours that hold devices or C++ libraries (OpenCV, PyAV): one still running when the interpreter exits
# can abort the whole test process (std::terminate while a daemon thread unwinds through OpenCV)
DEVICE_THREADS = {"virtual-camera", "recorder", "webcam", "control-keys"}


@pytest.fixture(autouse=True)
def _no_device_thread_outlives_its_test() -> Iterator[None]:
    before = {thread.ident for thread in threading.enumerate()}
    yield
    left = [t for t in threading.enumerate() if t.name in DEVICE_THREADS and t.ident not in before]
    for thread in left:
        thread.join(timeout=2.0)
    alive = sorted(t.name for t in left if t.is_alive())
    assert not alive, f"the test left device threads running (close the sink or source it started): {alive}"


@pytest.fixture
def token() -> str:
    return secrets.token_urlsafe(32)  # 32 bytes: HS256 keys shorter than that draw PyJWT's InsecureKeyLengthWarning


@pytest.fixture
async def signaling(token: str) -> AsyncIterator[SignalingService]:
    settings = SignalingSettings.load({"host": "127.0.0.1", "port": 0, "heartbeat_s": 1.0})
    async with SignalingService(settings, token) as service:
        yield service


@pytest.fixture
async def remote(signaling: SignalingService, token: str) -> AsyncIterator[RemotePeer]:
    peer = RemotePeer(RemoteSettings.load({**peer_fields(signaling, token), "width": 320, "height": 240}))
    async with running(peer.run):
        async with asyncio.timeout(10):
            await peer.connected.wait()
        yield peer


@pytest.fixture
def pulseaudio() -> Iterator[dict[str, str]]:
    """A private PulseAudio daemon with an ``avatar_mic`` null sink; yields the environment that reaches it."""
    assert shutil.which("pulseaudio"), (
        "pulseaudio is not installed (.ci/run installs pulseaudio, pulseaudio-utils, libasound2-plugins)"
    )
    daemon = PrivatePulseAudio()
    try:
        yield daemon.client_env
    finally:
        daemon.close()


@pytest.fixture
async def fish() -> AsyncIterator[FishSpeechStandIn]:
    """The Fish Speech v1.5.0 stand-in server on 127.0.0.1 (tests/fish_speech_stand_in.py)."""
    server = FishSpeechStandIn()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Debian's headless Chromium (never a downloaded browser), with loopback ICE allowed."""
    from playwright.async_api import async_playwright

    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is not installed (.ci/run installs it)"
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield launched
        await launched.close()
