"""The preview page's lip-sync trim (signaling/static/lip_sync.js), run in a real headless Chromium.

The controller is driven here by a stand-in peer connection whose streams drift apart on command: audio ahead of
the picture must be held back through the audio receiver's jitterBufferTarget; when the drift turns, that hold is
released before the video is held. A stand-in <video> reports how long after its hand-over each frame is shown.
The real page with the real avatar is in tests/test_browser_page.py (the offset readings there come from aiortc's
sender reports through Chromium's stats)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser

import signaling

pytestmark = pytest.mark.slow

LIP_SYNC_JS = Path(signaling.__file__).parent / "static" / "lip_sync.js"

# Two receivers with a natural delay each (audio 40 ms, video 70 ms); a target above it delays that stream. Where
# each one's playout is on the sender's clock follows: ``drift`` is how far the sound is ahead with no targets.
STAND_IN_PC = """() => {
  const natural = { audio: 40, video: 70 };
  const receivers = ['audio', 'video'].map((kind) => ({ track: { kind }, jitterBufferTarget: null, history: [] }));
  for (const r of receivers) {
    let target = null;
    Object.defineProperty(r, 'jitterBufferTarget', {
      get: () => target, set: (ms) => { target = ms; r.history.push(ms); }, enumerable: true,
    });
  }
  const delay = (kind) => Math.max(natural[kind], receivers.find((r) => r.track.kind === kind).jitterBufferTarget || 0);
  const pc = window.standInPc = {
    connectionState: 'connected', drift: 0, reads: 0, totals: { audio: [0, 0], video: [0, 0] },
    getReceivers: () => receivers,
    async getStats() {
      pc.reads += 1;
      const now = 1e9 + pc.reads * 1000;
      const reports = [];
      for (const kind of ['audio', 'video']) {
        const total = pc.totals[kind];
        total[0] += 100; total[1] += (delay(kind) / 1000) * 100;
        // what is played now was captured this long ago; the sound ``drift`` ms later than it would be
        const shift = kind === 'audio' ? pc.drift - delay('audio') + natural.audio : -delay('video') + natural.video;
        reports.push({ type: 'inbound-rtp', kind, estimatedPlayoutTimestamp: now + shift,
          jitterBufferEmittedCount: total[0], jitterBufferDelay: total[1], jitterBufferTargetDelay: total[1] });
      }
      return new Map(reports.map((r) => [r.kind, r]));
    },
  };
  return true;
}"""


async def stand_in_page(browser: Browser) -> Any:
    """A blank page with lip_sync.js loaded and the stand-in peer connection as ``window.standInPc``."""
    page = await browser.new_page()
    await page.add_script_tag(path=str(LIP_SYNC_JS))
    await page.evaluate(STAND_IN_PC)
    return page


async def settle(page: Any, reads: int) -> dict[str, Any]:
    """Wait until the controller has read the stand-in's stats ``reads`` more times; its state then."""
    start = await page.evaluate("() => window.standInPc.reads")
    await page.wait_for_function(f"() => window.standInPc.reads >= {start + reads}", timeout=10_000)
    return await page.evaluate(
        """() => ({ ...window.sync, audio: window.standInPc.getReceivers()[0].jitterBufferTarget,
                   video: window.standInPc.getReceivers()[1].jitterBufferTarget })"""
    )


async def test_the_stream_ahead_is_held_back_and_a_hold_released_before_the_other_is_held(browser: Browser) -> None:
    page = await stand_in_page(browser)
    await page.evaluate(
        "() => { window.standInPc.drift = 30;"
        " window.sync = startLipSync(window.standInPc, null, { periodMs: 10, aimMs: 0, displayLagMs: 0 }); }"
    )

    held = await settle(page, 40)
    # the sound was 30 ms ahead: it is held about that much behind its natural 40 ms, the picture is left alone
    assert held["video"] is None
    assert 40 + 30 - 5 <= held["audio"] <= 40 + 30 + 5
    assert abs(held["offsetMs"]) < 5

    await page.evaluate("() => { window.standInPc.drift = -20; }")  # now the picture runs 20 ms ahead
    turned = await settle(page, 60)
    history = await page.evaluate("() => window.standInPc.getReceivers().map((r) => r.history)")
    assert turned["audio"] is None, "the sound's hold is released first"
    assert history[0][-1] is None and history[1], "... and only then the picture is held"
    assert 70 + 20 - 5 <= turned["video"] <= 70 + 20 + 5
    assert abs(turned["offsetMs"]) < 5
    await page.close()


async def test_nothing_is_held_while_the_streams_are_within_2_ms(browser: Browser) -> None:
    page = await stand_in_page(browser)
    # in sync by the page's reckoning: the sound's estimate LIP_SYNC.aimMs ahead of the picture's as shown (its
    # estimate less the display lag, LIP_SYNC.displayLagMs with no video element); 1 ms from there is left alone
    aim, lag = await page.evaluate("() => [LIP_SYNC.aimMs, LIP_SYNC.displayLagMs]")
    await page.evaluate(
        f"() => {{ window.standInPc.drift = {aim - lag + 1};"
        " window.sync = startLipSync(window.standInPc, null, { periodMs: 10 }); }"
    )
    state = await settle(page, 20)
    assert state["offsetMs"] == 1 and state["steps"] == 0
    assert state["audio"] is None and state["video"] is None
    await page.close()


# A stand-in <video>: each requestVideoFrameCallback is answered 4 ms later with a frame shown
# ``window.standInVideo.lag`` ms after it was handed to the compositor (expectedDisplayTime - presentationTime).
STAND_IN_VIDEO = """() => {
  window.standInVideo = {
    lag: 25,
    requestVideoFrameCallback(callback) {
      setTimeout(() => {
        const now = performance.now();
        callback(now, { presentationTime: now, expectedDisplayTime: now + window.standInVideo.lag });
      }, 4);
    },
  };
  return true;
}"""


async def test_a_picture_shown_sooner_after_a_stall_is_held_back_by_that_much(browser: Browser) -> None:
    """Chromium's compositor showed each frame 25 ms after WebRTC handed it over, until a stall of the browser
    switched how it shows them: 2 ms from then on, the picture 23 ms early while both estimates stayed put. The trim
    reads each shown frame's lag and holds the picture back by the difference."""
    page = await stand_in_page(browser)
    await page.evaluate(STAND_IN_VIDEO)
    await page.evaluate(
        "() => { window.sync = startLipSync(window.standInPc, window.standInVideo,"
        " { periodMs: 10, aimMs: 25, lagFrames: 5 }); }"
    )
    steady = await settle(page, 20)
    assert steady["displayLagMs"] == 25 and steady["offsetMs"] == 0
    assert steady["audio"] is None and steady["video"] is None

    await page.evaluate("() => { window.standInVideo.lag = 2; }")
    await page.wait_for_function("() => window.sync.displayLagMs === 2", timeout=10_000)
    held = await settle(page, 60)
    assert held["audio"] is None
    assert 70 + 23 - 5 <= held["video"] <= 70 + 23 + 5, "the video's natural 70 ms plus the 23 ms it came early"
    assert abs(held["offsetMs"]) < 5
    await page.close()
