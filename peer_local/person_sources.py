"""The person's real webcam and microphone, kept running so a take-over switches within one frame."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

import av
import numpy as np

from media.frames import AUDIO_RATE
from media.resample import Resampler48k

logger = logging.getLogger(__name__)

VideoDeliver = Callable[[av.VideoFrame, float], None]
AudioDeliver = Callable[[av.AudioFrame, float], None]


class WebcamSource:
    """Frames of an OpenCV webcam, delivered on the event loop."""

    def __init__(self, index: int, deliver: VideoDeliver, fps: int = 25) -> None:
        self.index = index
        self.deliver = deliver
        self.fps = fps
        self.frames = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        import cv2

        capture = cv2.VideoCapture(self.index)
        if not capture.isOpened():
            raise RuntimeError(f"cannot open webcam {self.index} for take-over (check --webcam)")
        self._thread = threading.Thread(target=self._run, args=(capture, loop), daemon=True, name="webcam")
        self._thread.start()

    def _run(self, capture: object, loop: asyncio.AbstractEventLoop) -> None:
        import cv2

        try:
            while not self._stop.is_set():
                ok, bgr = capture.read()  # type: ignore[attr-defined]
                if not ok:
                    logger.warning("webcam %d stopped delivering frames", self.index)
                    return
                frame = av.VideoFrame.from_ndarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), format="rgb24")
                self.frames += 1
                loop.call_soon_threadsafe(self.deliver, frame, time.time())
        finally:
            capture.release()  # type: ignore[attr-defined]

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


class MicPassthrough:
    """20 ms blocks of the real microphone, captured at the device's own rate (WASAPI refuses others) and
    resampled once to 48 kHz on the event loop."""

    def __init__(self, device: str | None, deliver: AudioDeliver) -> None:
        self.device = device  # None: the default input; a number or part of a name (as ``--input mic:NAME``)
        self.deliver = deliver
        self._stream: object = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        from peer_local.audio_input.devices import (
            capture_channels,
            load_sounddevice,
            resolve_input_device,
            wasapi_settings,
        )

        sd = load_sounddevice()
        device = resolve_input_device(self.device)  # a clear error naming the inputs there are

        rate = int(device.default_samplerate) or AUDIO_RATE
        resampler = Resampler48k(rate)

        def on_loop(block: np.ndarray, captured: float) -> None:
            samples = resampler.convert(block)
            if samples.size:
                frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
                frame.sample_rate = AUDIO_RATE
                self.deliver(frame, captured)

        def callback(indata: np.ndarray, frames: int, _time: object, status: object) -> None:
            mono = indata[:, 0].copy() if indata.shape[1] == 1 else indata.mean(axis=1).astype(np.int16)
            loop.call_soon_threadsafe(on_loop, mono, time.time())

        stream = sd.InputStream(
            samplerate=rate,
            channels=capture_channels(device),  # a WASAPI microphone array: all its channels, downmixed
            dtype="int16",
            blocksize=rate // 50,
            device=device.index,
            callback=callback,
            extra_settings=wasapi_settings(device),
        )
        stream.start()
        self._stream = stream
        logger.info("take-over microphone: %s (%d Hz)", device.name, rate)

    def stop(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.stop()  # type: ignore[attr-defined]
            stream.close()  # type: ignore[attr-defined]
