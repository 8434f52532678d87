"""The preview page as a viewer sees it: Debian's headless Chromium (driven by Playwright, no browser download)
opens the page, and a script in it notes, on the page's clock (``performance.now``), when each video frame is
shown (requestVideoFrameCallback's expectedDisplayTime: its brightness under the stamp and its stamped index)
and when each beep is output (an AudioWorklet on the ``<video>``'s stream, its context time mapped through
``getOutputTimestamp``), and once a second the browser's own estimate of the offset (inbound-rtp
``estimatedPlayoutTimestamp``) with what the page's lip-sync trim holds back.

Given a PulseAudio server, Chromium also plays the page's sound there, unmuted as a viewer would (Playwright's
default ``--mute-audio`` left out), so what the ``<video>`` element itself outputs can be recorded from a null
sink's monitor; ``page_to_monotonic_s`` then maps the page's clock to ``time.monotonic``."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from typing import Any

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--allow-loopback-in-peer-connection",
]

# runs in the page once the video plays, given the mouth box [x, y, w, h] of a speaking face or null; results
# collect in window.__sync: per frame [display time, brightness under the stamp, stamped index, mouth darkness,
# the time the frame was handed to the compositor]
INSTRUMENT_JS = """async (mouth) => {
  const video = document.getElementById('video');
  const out = { frames: [], beeps: [], error: null };
  window.__sync = out;
  const canvas = document.createElement('canvas');
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const onFrame = (now, meta) => {
    const w = video.videoWidth, h = video.videoHeight;
    if (w && h) {
      canvas.width = w; canvas.height = h;
      ctx.drawImage(video, 0, 0, w, h);
      const block = Math.max(4, Math.floor(w / 32));
      const px = ctx.getImageData(0, 0, w, h).data;
      const luma = (x, y) => { const i = 4 * (y * w + x); return 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2]; };
      let sum = 0, n = 0;
      for (let y = 3 * block; y < h; y += 4) for (let x = 0; x < w; x += 4) { sum += luma(x, y); n++; }
      let index = 0;
      for (let bit = 0; bit < 32; bit++) {
        const cx = bit * block + Math.floor(block / 2), cy = Math.floor(block / 2);
        index = index * 2 + (luma(cx, cy) > 128 ? 1 : 0);
      }
      let dark = null;
      if (mouth) {
        let msum = 0, mn = 0;
        for (let y = mouth[1]; y < Math.min(h, mouth[1] + mouth[3]); y++)
          for (let x = mouth[0]; x < Math.min(w, mouth[0] + mouth[2]); x++) { msum += luma(x, y); mn++; }
        dark = mn ? 255 - msum / mn : null;
      }
      out.frames.push([meta.expectedDisplayTime, sum / n, index, dark, meta.presentationTime]);
    }
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
  // once a second: where the browser puts each stream's playout on the sender's clock (sound minus picture, ms)
  // and what the page's lip-sync trim holds back (audio, video jitterBufferTarget ms), on the page's clock
  out.estimates = [];
  setInterval(async () => {
    const pc = window.avatarPage && window.avatarPage.pc;
    if (!pc) return;
    const at = {};
    (await pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp') at[s.kind] = s.estimatedPlayoutTimestamp; });
    const trim = window.avatarPage.lipSync;
    if (at.audio && at.video)
      out.estimates.push([performance.now(), at.audio - at.video, trim ? trim.audioTargetMs : null,
        trim ? trim.videoTargetMs : null]);
  }, 1000);
  try {
    const audio = new AudioContext({ latencyHint: 'interactive' });
    const worklet = `class Onsets extends AudioWorkletProcessor {
      constructor() { super(); this.quiet = 0; }
      process(inputs, outputs) {
        const x = inputs[0][0];
        if (x) {
          for (let i = 0; i < x.length; i++) {
            if (Math.abs(x[i]) > 0.15) {
              if (this.quiet >= 0.3 * sampleRate) this.port.postMessage(currentTime + i / sampleRate);
              this.quiet = 0;
            } else { this.quiet++; }
          }
        }
        return true;
      }
    }
    registerProcessor('onsets', Onsets);`;
    await audio.audioWorklet.addModule(URL.createObjectURL(new Blob([worklet], { type: 'text/javascript' })));
    const node = new AudioWorkletNode(audio, 'onsets');
    const silent = new GainNode(audio, { gain: 0 });  // pulled by the destination, heard nowhere
    node.port.onmessage = (event) => {
      const stamp = audio.getOutputTimestamp();
      // the context time being output at performanceTime; the onset is output (event.data - contextTime) later
      out.beeps.push(stamp.performanceTime + (event.data - stamp.contextTime) * 1000);
      out.audio_latency_ms = [audio.baseLatency * 1000, (audio.outputLatency || 0) * 1000];
    };
    audio.createMediaStreamSource(video.srcObject).connect(node);
    node.connect(silent).connect(audio.destination);
    await audio.resume();
  } catch (e) { out.error = String(e); }
}"""


class PreviewPageCapture:
    """The preview page in headless Chromium, instrumented; ``result`` after ``stop``. With ``pulse_env`` (the
    variables that reach a PulseAudio server and pick its sink) the page is unmuted and plays there."""

    def __init__(self, pulse_env: dict[str, str] | None = None) -> None:
        self._pulse_env = pulse_env
        self._playwright: Any = None
        self._browser: Any = None
        self._page: Any = None
        self.result: dict[str, Any] = {}
        self.page_to_monotonic_s: float | None = None  # monotonic seconds = page ms / 1000 + this

    async def start(self, url: str, mouth: tuple[int, int, int, int] | None = None) -> None:
        """Open ``url``; with ``mouth`` (x, y, w, h in the video's pixels) each frame's mouth darkness is noted too."""
        from playwright.async_api import async_playwright

        executable = shutil.which("chromium")
        if executable is None:
            raise RuntimeError("Debian's chromium is not installed (apt-get install chromium)")
        self._playwright = await async_playwright().start()
        sound: dict[str, Any] = {}
        if self._pulse_env is not None:
            sound = {"env": {**os.environ, **self._pulse_env}, "ignore_default_args": ["--mute-audio"]}
        self._browser = await self._playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True, **sound
        )
        self._page = await self._browser.new_page()
        await self._page.goto(url)
        await self._page.wait_for_function(
            "() => { const v = document.getElementById('video'); return v.readyState >= 2 && v.srcObject; }",
            timeout=60_000,
        )
        if self._pulse_env is not None:
            await self._page.click("#unmute")
        await self._page.evaluate(INSTRUMENT_JS, list(mouth) if mouth is not None else None)
        self.page_to_monotonic_s = await self._clock_offset()

    async def _clock_offset(self, samples: int = 9) -> float:
        """``time.monotonic() - performance.now() / 1000``, from the quickest of a few round trips (its error is
        at most half that trip)."""
        best: tuple[float, float] | None = None
        for _ in range(samples):
            before = time.monotonic()
            page_ms = float(await self._page.evaluate("() => performance.now()"))
            after = time.monotonic()
            if best is None or after - before < best[0]:
                best = (after - before, (before + after) / 2 - page_ms / 1000)
        assert best is not None
        return best[1]

    async def stall(self, seconds: float) -> None:
        """Stop the browser's processes for ``seconds`` (SIGSTOP, then SIGCONT): a viewer's machine that stalls."""
        import psutil

        processes = [p for p in psutil.Process().children(recursive=True) if "chrom" in p.name().lower()]
        if not processes:
            raise RuntimeError("no browser process to stall: the page is not open")
        for process in processes:
            process.suspend()
        try:
            await asyncio.sleep(seconds)
        finally:
            for process in processes:
                process.resume()

    async def stop(self) -> None:
        try:
            if self._page is not None:
                self.result = await self._page.evaluate("() => window.__sync")
        finally:
            if self._browser is not None:
                await self._browser.close()
            if self._playwright is not None:
                await self._playwright.stop()
