"""The preview page in a real headless Chromium (Debian's, driven by Playwright; no browser is downloaded)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from benchmarks.harness.processes import loopback_peer_fields
from peer_local.control import LiveControl
from peer_local.service import LocalPeer
from peer_local.settings import LocalSettings
from peer_remote.service import RemotePeer
from peer_remote.settings import RemoteSettings
from signaling.server import SignalingService, join_url
from tests.collecting_sink import CollectingSink
from tests.conftest import ARTIFACTS
from tests.peer_helpers import running

pytestmark = pytest.mark.slow


@pytest.fixture
async def avatar(signaling: SignalingService, token: str, tmp_path: Path) -> AsyncIterator[RemotePeer]:
    settings = RemoteSettings.load(
        {
            "signaling": signaling.base_url,
            "room": "web",
            "token": token,
            "ice_servers": [],
            "ice_host_addresses": ["127.0.0.1"],
            "width": 384,
            "height": 384,
            "face_cache_dir": tmp_path,
        }
    )
    peer = RemotePeer(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(peer.run(stop))
    async with asyncio.timeout(60):
        await peer.connected.wait()
    yield peer
    stop.set()
    async with asyncio.timeout(20):
        await task


async def open_page(browser: Browser, url: str) -> Page:
    context = await browser.new_context(viewport={"width": 800, "height": 1100})
    page = await context.new_page()
    await page.goto(url)
    return page


async def video_state(page: Page) -> dict[str, Any]:
    return await page.evaluate(
        """() => { const v = document.getElementById('video');
        return { ready: v.readyState, width: v.videoWidth, height: v.videoHeight,
                 frames: v.getVideoPlaybackQuality().totalVideoFrames,
                 audioTracks: v.srcObject ? v.srcObject.getAudioTracks().length : 0 }; }"""
    )


async def test_the_page_plays_the_avatar_and_a_typed_message_gets_a_spoken_answer(
    browser: Browser, signaling: SignalingService, token: str, avatar: RemotePeer
) -> None:
    page = await open_page(browser, join_url(signaling.base_url, "web", token))
    await page.wait_for_function(
        "() => { const v = document.getElementById('video'); return v.readyState >= 2 && v.videoWidth > 0; }",
        timeout=30_000,
    )
    first = await video_state(page)
    assert (first["width"], first["height"]) == (384, 384) and first["audioTracks"] == 1
    await page.wait_for_function(
        f"() => document.getElementById('video').getVideoPlaybackQuality().totalVideoFrames > {first['frames'] + 25}",
        timeout=15_000,
    )

    await page.fill("#text", "Hello, who are you?")
    await page.click("#say button[type=submit]")
    await page.wait_for_function(
        "() => document.getElementById('turn-state').textContent === 'speaking'", timeout=30_000
    )
    await page.wait_for_function(
        "() => window.avatarPage.audioLevel && window.avatarPage.audioLevel() > 0.01", timeout=15_000
    )
    await page.wait_for_function("() => document.getElementById('turn-text').textContent.length > 3", timeout=30_000)
    await page.wait_for_function("() => document.querySelectorAll('#metrics dt').length >= 5", timeout=60_000)
    await page.wait_for_function("() => document.querySelectorAll('#stats dt').length >= 5", timeout=10_000)
    # the lip-sync trim reads where each stream's playout is on the avatar's clock (aiortc's sender reports)
    await page.wait_for_function(
        "() => window.avatarPage.lipSync && window.avatarPage.lipSync.offsetMs !== null", timeout=20_000
    )
    await page.wait_for_function("() => document.getElementById('stats').textContent.includes('picture late by')")
    stats = await page.inner_text("#stats")
    assert "fps" in stats and "384×384" in stats and "round-trip time" in stats
    assert abs(await page.evaluate("() => window.avatarPage.lipSync.offsetMs")) < 200
    # ... and, from each frame shown (requestVideoFrameCallback), how long after its hand-over Chromium shows it
    shown, lag = await page.evaluate(
        "() => [window.avatarPage.lipSync.framesShown, window.avatarPage.lipSync.displayLagMs]"
    )
    assert shown > 10 and 0 <= lag < 100
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "preview-page.png"), full_page=True)
    assert avatar.avatar.transcripts[-1].text == "Hello, who are you?"


BADGE_SHOWN = (
    "() => { const b = document.getElementById('control'); return !b.hidden && b.textContent.includes('%s'); }"
)


async def test_the_page_shows_who_is_in_control_live_and_to_a_page_opened_later(
    browser: Browser, signaling: SignalingService, token: str, avatar: RemotePeer
) -> None:
    page = await open_page(browser, join_url(signaling.base_url, "web", token))
    await page.wait_for_function("() => document.getElementById('video').readyState >= 2", timeout=30_000)
    assert await page.is_hidden("#control")  # the clone speaks: no badge
    local = LocalPeer(LocalSettings.load(loopback_peer_fields(signaling.base_url, "web", token)), [CollectingSink()])
    control = LiveControl(local)
    async with running(local.run):
        async with asyncio.timeout(15):
            session = await local.wait_session()
            await session.channel_open.wait()
        control.take_over()
        await page.wait_for_function(BADGE_SHOWN % "taken over", timeout=10_000)
        later = await open_page(browser, join_url(signaling.base_url, "web", token))
        await later.wait_for_function(BADGE_SHOWN % "taken over", timeout=30_000)  # told on joining
        control.hand_back()
        control.set_muted(True)
        await page.wait_for_function(BADGE_SHOWN % "muted", timeout=10_000)
        control.set_muted(False)
        await page.wait_for_function("() => document.getElementById('control').hidden", timeout=10_000)


async def test_a_wrong_token_shows_an_error_instead_of_hanging(browser: Browser, signaling: SignalingService) -> None:
    page = await open_page(browser, join_url(signaling.base_url, "web", "not-the-token"))
    await page.wait_for_function("() => document.getElementById('status').classList.contains('error')", timeout=10_000)
    assert "token is wrong" in await page.inner_text("#status")
    assert await page.is_visible("#join")


async def test_the_page_reconnects_when_the_avatar_restarts(
    browser: Browser, signaling: SignalingService, token: str, tmp_path: Path
) -> None:
    settings = RemoteSettings.load(
        {
            "signaling": signaling.base_url,
            "room": "web",
            "token": token,
            "ice_servers": [],
            "ice_host_addresses": ["127.0.0.1"],
            "source": "test-pattern",
            "width": 256,
            "height": 256,
        }
    )
    page = await open_page(browser, join_url(signaling.base_url, "web", token))
    for _ in range(2):  # start, stop, start again: the page follows without a reload
        peer = RemotePeer(settings)
        stop = asyncio.Event()
        task = asyncio.create_task(peer.run(stop))
        await page.wait_for_function(
            "() => window.avatarPage.pc && window.avatarPage.pc.connectionState === 'connected'", timeout=30_000
        )
        frames = (await video_state(page))["frames"]
        await page.wait_for_function(
            f"() => document.getElementById('video').getVideoPlaybackQuality().totalVideoFrames > {frames + 10}",
            timeout=15_000,
        )
        stop.set()
        async with asyncio.timeout(20):
            await task
        await page.wait_for_function("() => !window.avatarPage.pc", timeout=15_000)
