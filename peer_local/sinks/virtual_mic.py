"""The clone's voice as a microphone: sounddevice output at 48 kHz into a virtual cable or null sink.

On Windows VB-Cable's "CABLE Input" is listed once per host API: it is opened on WASAPI with the system's
rate converter (``auto_convert``), with DirectSound and then MME as fallbacks.

A small jitter buffer sits between the network (RTP clock) and the sound card (its own clock). It holds
about ``target_ms``; when the card drifts, the fill is steered back by dropping or repeating one sample at a
time, spread out, so there are no clicks and the delay cannot grow over an hour. An empty buffer plays
silence.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import av
import numpy as np

from media.audio import mono_int16
from media.frames import AUDIO_RATE
from peer_local.audio_input.base import AudioInputError
from peer_local.audio_input.devices import (
    AudioDevice,
    list_devices,
    load_sounddevice,
    matching_devices,
    wasapi_settings,
)
from peer_local.audio_input.pulse_server import PULSE_DEVICE, pulse_sinks
from peer_local.sinks.media_timeline import StreamTimeline

logger = logging.getLogger(__name__)

DEFAULT_WINDOWS_DEVICE = "CABLE Input (VB-Audio Virtual Cable)"
DEFAULT_LINUX_SINK = "avatar_mic"
BLOCK = 480  # 10 ms
LATENCY_SMOOTHING = 0.05  # per block: the measured output latency follows over about 200 ms
# ... except a step: block to block the measurement moves by 0.02 ms (p50; p99 0.05, max 0.3 ms over 20 s on a
# PulseAudio null sink), so a change this large is the output itself moving (an underrun re-primed the buffer, the
# card stalled), and the camera, which waits as long as the voice takes (``output_latency_s``), follows at once
LATENCY_STEP_S = 0.005


def default_mic_device() -> str:
    return DEFAULT_WINDOWS_DEVICE if sys.platform == "win32" else DEFAULT_LINUX_SINK


class JitterBuffer:
    """Thread-safe int16 FIFO with steady, click-free drift correction toward ``target`` samples."""

    def __init__(self, target_ms: float = 60.0, max_ms: float = 400.0) -> None:
        self.target = int(AUDIO_RATE * target_ms / 1000)
        self.max = int(AUDIO_RATE * max_ms / 1000)
        self._chunks: deque[tuple[np.ndarray, float | None]] = deque()  # samples, when the first one was due
        self._fill = 0
        self._lock = threading.Lock()
        self._primed = False
        self._average = float(self.target)
        self.underruns = 0
        self.dropped = 0
        self.adjusted = 0
        self.last_pulled_due: float | None = None  # when the first sample of the last pull was due

    @property
    def fill(self) -> int:
        return self._fill

    def push(self, samples: np.ndarray, due: float | None = None) -> None:
        """Queue ``samples``; ``due`` (epoch seconds): when the first would play with no delay at all."""
        with self._lock:
            self._chunks.append((samples.astype(np.int16, copy=False), due))
            self._fill += samples.size
            while self._fill > self.max:  # far behind (a stall): drop the oldest, stay near real time
                old, _ = self._chunks.popleft()
                self._fill -= old.size
                self.dropped += old.size

    def clear(self) -> None:
        with self._lock:
            self._chunks.clear()
            self._fill = 0
            self._primed = False

    def _take(self, count: int) -> np.ndarray:
        out = np.zeros(count, dtype=np.int16)
        filled = 0
        self.last_pulled_due = self._chunks[0][1] if self._chunks else None
        while filled < count and self._chunks:
            head, due = self._chunks[0]
            take = min(count - filled, head.size)
            out[filled : filled + take] = head[:take]
            filled += take
            if take == head.size:
                self._chunks.popleft()
            else:
                self._chunks[0] = (head[take:], None if due is None else due + take / AUDIO_RATE)
        self._fill -= filled
        return out[:filled]

    def pull(self, count: int) -> np.ndarray:
        """``count`` samples for the sound card (silence where there is nothing)."""
        with self._lock:
            if not self._primed:
                if self._fill < self.target:
                    self.last_pulled_due = None
                    return np.zeros(count, dtype=np.int16)
                self._primed = True
            # steer on the average fill: arrivals and card pulls are bursty, the drift is slow
            self._average = 0.98 * self._average + 0.02 * self._fill
            error = self._average - self.target
            # steer by one sample per 10 ms block at most: 0.2 % speed change, inaudible
            want = count + (1 if error > self.target // 2 else -1 if error < -self.target // 2 else 0)
            data = self._take(max(0, want))
            if data.size < want:
                self.underruns += 1
                self._primed = self._fill > 0
                return np.concatenate([data, np.zeros(count - min(count, data.size), dtype=np.int16)])[:count]
            if want != count:
                self.adjusted += 1
                # resample the block to exactly ``count`` samples (drops or repeats one, spread smoothly)
                positions = np.linspace(0, want - 1, count)
                data = np.interp(positions, np.arange(want), data.astype(np.float32)).astype(np.int16)
            return data


def ensure_pulse_sink(name: str) -> bool:
    """Create the null sink ``name`` if the sound server lacks it; True if it exists afterwards."""
    sinks = pulse_sinks()
    if sinks is None:
        return False
    if name not in sinks:
        logger.info(
            "creating the PulseAudio null sink %s (pick 'Monitor of %s' as the meeting's microphone)", name, name
        )
        subprocess.run(
            [
                "pactl",
                "load-module",
                "module-null-sink",
                f"sink_name={name}",
                f"sink_properties=device.description={name}",
            ],
            capture_output=True,
            timeout=5,
            check=False,
        )
        sinks = pulse_sinks() or []
    return name in sinks


def find_output_devices(name: str, devices: list[AudioDevice] | None = None, create: bool = True) -> list[AudioDevice]:
    """The output devices named ``name`` (exactly, cut to 31 characters by MME, a part of it, or the same hardware
    under a localised endpoint name), WASAPI first; on Linux a PulseAudio/PipeWire sink is reached through the
    ``pulse`` device with PULSE_SINK, and the ``avatar_mic`` null sink is created if missing (unless ``create``
    is False: only look)."""
    devices = devices if devices is not None else list_devices()
    outputs = [d for d in devices if d.max_output_channels > 0]
    matches = matching_devices(name, outputs)
    pulse = next((d for d in outputs if d.name == PULSE_DEVICE), None)
    if not matches and pulse is not None and sys.platform.startswith("linux"):
        exists = ensure_pulse_sink(name) if create and name == DEFAULT_LINUX_SINK else name in (pulse_sinks() or [])
        if exists:
            os.environ["PULSE_SINK"] = name  # read by the ALSA pulse plugin when the stream opens
            matches = [pulse]
    if not matches:
        listing = "\n  ".join(d.describe() for d in outputs) or "(none)"
        fix = (
            "install VB-Audio Virtual Cable (https://vb-audio.com/Cable/) and pick 'CABLE Output' as the microphone "
            "in the meeting app"
            if sys.platform == "win32"
            else "create a null sink: pactl load-module module-null-sink sink_name=avatar_mic, then pick "
            "'Monitor of avatar_mic' as the microphone in the meeting app"
        )
        raise AudioInputError(
            f"no output device {name!r}; {fix}; or run with --mic-out none. Output devices:\n  {listing}"
        )
    return matches


def find_output_device(name: str, devices: list[AudioDevice] | None = None, create: bool = True) -> AudioDevice:
    """The best of :func:`find_output_devices`."""
    return find_output_devices(name, devices, create)[0]


class VirtualMicSink:
    """Plays the avatar's audio into an output device; silence when the avatar is silent or gone."""

    def __init__(
        self,
        device: AudioDevice | None,
        target_ms: float = 60.0,
        stream_factory: Any = None,
        fallbacks: Sequence[AudioDevice] = (),
    ) -> None:
        self.device = device
        self.fallbacks = list(fallbacks)  # the same device on other host APIs, tried in order if it fails to open
        self.buffer = JitterBuffer(target_ms)
        self.playing = threading.Event()  # the sound card has been pulling for 0.5 s (past its start-up bursts)
        self._pulled = 0
        self.measured_latency_s: float | None = None
        self.timeline = StreamTimeline()
        self._stream: Any = None
        self._stream_factory = stream_factory

    def start(self) -> None:
        sd = load_sounddevice()
        factory = self._stream_factory or sd.OutputStream
        failures: list[str] = []
        for device in [self.device, *self.fallbacks]:
            try:
                self._stream = factory(
                    device=device.index if device else None,
                    samplerate=AUDIO_RATE,
                    channels=1,
                    dtype="int16",
                    blocksize=BLOCK,
                    latency="low",
                    callback=self._callback,
                    extra_settings=wasapi_settings(device) if device else None,
                )
                self._stream.start()
            except (sd.PortAudioError, ValueError) as exc:
                failures.append(f"{device.describe() if device else 'the default output'}: {exc}")
                if self._stream is not None:
                    self._stream.close()
                    self._stream = None
                continue
            if device is not self.device:
                logger.warning("virtual microphone: %s; using %s instead", failures[-1], device and device.hostapi)
            self.device = device
            break
        else:
            raise AudioInputError("cannot open the virtual microphone: " + "; ".join(failures))
        logger.info("virtual microphone: playing into %s", self.describe())

    def describe(self) -> str:
        """The open device with its host API, rate and measured latency (what ``avatar devices --check`` prints)."""
        where = f"{self.device.name} ({self.device.hostapi})" if self.device else "the default output"
        rate = int(getattr(self._stream, "samplerate", AUDIO_RATE) or AUDIO_RATE)
        return f"{where}, {rate} Hz, output latency {self.output_latency_s * 1000:.0f} ms"

    @property
    def output_latency_s(self) -> float:
        """From when a sample was due (its RTP time on the arrival clock, see media_timeline.py) to the moment
        the device outputs it: measured on every block the sound card pulls; until the first measurement, the
        device's reported latency plus what the jitter buffer holds."""
        if self.measured_latency_s is not None:
            return self.measured_latency_s
        device = float(getattr(self._stream, "latency", 0.0) or 0.0)
        return device + self.buffer.fill / AUDIO_RATE

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        outdata[:, 0] = self.buffer.pull(frames)
        self._pulled += frames
        due = self.buffer.last_pulled_due
        if due is not None and time_info is not None and self._stream is not None:
            # PortAudio's stream clock: this block reaches the output (the DAC, or the null sink's monitor) at
            # outputBufferDacTime. Mapped to epoch time by reading both clocks now, not by assuming the callback
            # ran at currentTime (it may have waited for the GIL)
            out_at = float(time_info.outputBufferDacTime) + time.time() - float(self._stream.time)
            latency = out_at - due
            if 0.0 <= latency < 2.0:
                previous = self.measured_latency_s
                if previous is None or abs(latency - previous) > LATENCY_STEP_S:
                    self.measured_latency_s = latency
                else:
                    self.measured_latency_s = previous + LATENCY_SMOOTHING * (latency - previous)
        if self._pulled >= AUDIO_RATE // 2 and not self.playing.is_set():
            self.playing.set()

    def on_audio(self, frame: av.AudioFrame, arrival: float) -> None:
        self.buffer.push(mono_int16(frame), self.timeline.due(frame, arrival))

    def on_video(self, frame: av.VideoFrame, arrival: float) -> None:
        return None

    def on_connection(self, connected: bool) -> None:
        if not connected:
            self.buffer.clear()  # the meeting hears silence, never a stuck sound

    async def close(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            stream.stop()
            stream.close()
