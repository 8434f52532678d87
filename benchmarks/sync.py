"""``avatar bench sync``: the A/V offset each sink outputs, read from the output media itself.

A remote peer (the test pattern, or the portrait speaking generated sentences) streams to a local peer on
127.0.0.1; the local peer feeds the real sinks: the MP4 recorder (decoded afterwards with PyAV), the virtual
microphone into a private PulseAudio null sink whose monitor is recorded, together with the virtual camera
whose frames are timestamped as pyvirtualcam would send them, and the preview page in headless Chromium (its
WebAudio tap on the page's clock, and the sound the page plays into another null sink against the frames it
shows, mapped to the same monotonic clock).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np

from benchmarks.harness.page_capture import PreviewPageCapture
from benchmarks.harness.processes import loopback_peer_fields
from benchmarks.harness.sink_capture import (
    MIC_SINK,
    PAGE_SINK,
    MonitorCapture,
    PrivatePulseAudio,
    TimestampingCameraStandIn,
)
from media.audio import mono_int16
from media.frames import AUDIO_RATE, AVChunk, FrameSlot
from media.measure import summary_ms
from media.profile.face_geometry import FaceGeometry
from media.sync_offset import (
    FLASH_LUMA,
    beep_onsets,
    below_stamp_luma,
    flash_beep_pairs,
    flash_onsets,
    mouth_box,
    mouth_darkness,
    mouth_energy_offset,
    paired_offsets,
    starts_a_flash,
)
from media.test_pattern import ToneOnsetDetector, luma_plane
from peer_local.service import LocalPeer
from peer_local.settings import LocalSettings
from peer_local.sinks.base import MediaSink
from peer_local.sinks.recorder import RecorderSink
from peer_remote.avatar_producer import AvatarProducer
from peer_remote.face.portrait import PortraitAnimator
from peer_remote.service import RemotePeer
from peer_remote.settings import RemoteSettings
from signaling.server import SignalingService, join_url
from signaling.settings import SignalingSettings

SINKS = ("recorder", "camera-mic", "page")
SOURCES = ("test-pattern", "speaking")
WARMUP_S = 3.0
# Chromium's own A/V sync (its stream synchronization) moves the video's delay in steps of tens of ms per second
# once both streams have sender reports: the page's offset settles over the first seconds of a viewer's call
PAGE_SETTLE_S = 15.0
SPEECH_WINDOW_S = 4.0  # the speaking offset is fitted per window; p50/p95 over the windows
SENTENCES = (
    "What time is the meeting with the design team tomorrow?",
    "Please send me the quarterly report before Friday.",
    "I think we should move the launch to next month.",
)


@dataclass
class SyncBenchConfig:
    duration_s: float = 20.0
    sinks: tuple[str, ...] = SINKS
    sources: tuple[str, ...] = SOURCES
    size: int = 320
    fps: int = 25
    page_lip_sync: bool = True  # the page's own trim (signaling/static/lip_sync.js); off: the browser's sync alone
    # seconds after the page opens at which its browser is stopped for ``page_stall_s`` (a viewer's machine stalling)
    page_stalls_at_s: tuple[float, ...] = ()
    page_stall_s: float = 0.2
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="avatar-bench-sync-")))


class SpeechLoopProducer:
    """The avatar's producer (portrait face) fed generated sentences back to back, with pauses between them."""

    def __init__(self, inner: AvatarProducer, sentences: Sequence[np.ndarray]) -> None:
        self.inner = inner
        self.width, self.height = inner.width, inner.height
        self._sentences = list(sentences)
        self._next = 0

    def clear(self) -> None:
        self.inner.clear()

    async def produce(self, slot: FrameSlot) -> AVChunk:
        if self.inner.queued_s < 0.5:
            speech = self._sentences[self._next % len(self._sentences)]
            self._next += 1
            pause = np.zeros(int(0.7 * AUDIO_RATE), dtype=np.int16)
            await self.inner.enqueue("bench", np.concatenate([speech, pause]))
        return await self.inner.produce(slot)


def generated_sentences(workdir: Path) -> list[np.ndarray]:
    from benchmarks.harness.speech import espeak, read_wav
    from media.resample import Resampler48k

    out = []
    for i, text in enumerate(SENTENCES):
        samples, rate = read_wav(espeak(text, workdir / f"sentence-{i}.wav"))
        resampler = Resampler48k(rate)
        out.append(np.concatenate([resampler.convert(samples), resampler.flush()]))
    return out


class ArrivalProbe:
    """A sink that notes when each flash and beep of the test pattern arrived (monotonic clock): the sinks'
    offsets split into what came in and what each device path added."""

    def __init__(self) -> None:
        self.flashes: list[float] = []
        self.beeps: list[float] = []
        self._bright = True
        self._tone = ToneOnsetDetector()
        self._wall_to_mono = time.monotonic() - time.time()

    def on_video(self, frame: av.VideoFrame, arrival: float) -> None:
        bright = below_stamp_luma(luma_plane(frame)) >= FLASH_LUMA
        if bright and not self._bright:
            self.flashes.append(arrival + self._wall_to_mono)
        self._bright = bright

    def on_audio(self, frame: av.AudioFrame, arrival: float) -> None:
        onset = self._tone.feed(mono_int16(frame))
        if onset is not None:
            self.beeps.append(arrival + self._wall_to_mono + onset / AUDIO_RATE)

    def on_connection(self, connected: bool) -> None:
        return None

    async def close(self) -> None:
        return None


@dataclass
class Capture:
    """What one run's sinks output."""

    recorder: Path | None = None
    camera: TimestampingCameraStandIn | None = None
    monitor: MonitorCapture | None = None
    geometry: FaceGeometry | None = None
    probe: ArrivalProbe | None = None
    page: dict[str, Any] | None = None
    page_output: MonitorCapture | None = None  # what the page's <video> played, from the page sink's monitor
    page_to_monotonic_s: float | None = None
    page_stalls: list[float] = field(default_factory=list)  # when the page's browser was stopped (monotonic s)


async def run_sync_bench(config: SyncBenchConfig) -> dict[str, Any]:
    """Each source once, all sinks at the same time; returns the result document."""
    wants_pulse = "camera-mic" in config.sinks or "page" in config.sinks
    pulse = PrivatePulseAudio((MIC_SINK, PAGE_SINK)) if wants_pulse else None
    if pulse is not None:
        os.environ.update(pulse.env)  # before PortAudio starts: it reaches the sound server it finds then
    results: list[dict[str, Any]] = []
    try:
        for source in config.sources:
            capture = await _run_source(config, source, pulse)
            results += analyse(capture, source, config.fps)
    finally:
        if pulse is not None:
            pulse.close()
    return {"bench": "sync", "config": {**asdict(config), "workdir": str(config.workdir)}, "sinks": results}


async def _run_source(config: SyncBenchConfig, source: str, pulse: PrivatePulseAudio | None) -> Capture:
    from peer_local.audio_input.devices import load_sounddevice
    from peer_local.sinks.virtual_camera import VirtualCameraSink
    from peer_local.sinks.virtual_mic import VirtualMicSink, find_output_device

    token = secrets.token_urlsafe(32)
    capture = Capture()
    signaling_settings = SignalingSettings.load({"host": "127.0.0.1", "port": 0, "token": token})
    async with SignalingService(signaling_settings, token) as service:
        fields = loopback_peer_fields(service.base_url, "sync", token)
        remote_fields = {**fields, "width": config.size, "height": config.size, "fps": config.fps}
        producer = None
        if source == "speaking":
            remote_fields |= {"source": "avatar", "face": "portrait", "face_cache_dir": config.workdir}
            face = PortraitAnimator(None, config.size, config.size, cache_dir=config.workdir)
            await asyncio.get_running_loop().run_in_executor(None, face.prepare)
            capture.geometry = face.geometry
            producer = SpeechLoopProducer(AvatarProducer(face), generated_sentences(config.workdir))
        remote = RemotePeer(RemoteSettings.load(remote_fields), producer=producer)  # type: ignore[arg-type]
        sinks: list[MediaSink] = []
        mic = camera = None
        if "recorder" in config.sinks:
            capture.recorder = config.workdir / f"{source}.mp4"
            sinks.append(RecorderSink(capture.recorder, fps=config.fps))
        if source == "test-pattern":
            capture.probe = ArrivalProbe()
            sinks.append(capture.probe)
        if "camera-mic" in config.sinks:
            mic = VirtualMicSink(find_output_device(MIC_SINK))
            mic.start()
            sinks.append(mic)
            read = frame_reader(source, config.fps, capture.geometry)
            stand_in = TimestampingCameraStandIn(config.size, config.size, config.fps, read=read)
            capture.camera = stand_in
            camera = VirtualCameraSink(
                config.size,
                config.size,
                config.fps,
                video_delay_s=lambda: mic.output_latency_s,
                camera_factory=lambda *a, **k: stand_in,
            )
            camera.start()
            sinks.append(camera)
            capture.monitor = MonitorCapture(load_sounddevice())
            capture.monitor.start()
        local = LocalPeer(LocalSettings.load({**fields, "fps": config.fps}), sinks)
        stop_remote, stop_local = asyncio.Event(), asyncio.Event()
        remote_task = asyncio.create_task(remote.run(stop_remote))
        local_task = asyncio.create_task(local.run(stop_local))
        page = None
        if "page" in config.sinks and (source == "test-pattern" or pulse is not None):
            page = PreviewPageCapture(None if pulse is None else {**pulse.env, "PULSE_SINK": PAGE_SINK})
        try:
            if page is not None:
                async with asyncio.timeout(60):
                    await remote.connected.wait()
                if pulse is not None:
                    capture.page_output = MonitorCapture(load_sounddevice(), PAGE_SINK)
                    capture.page_output.start()
                mouth = mouth_box(capture.geometry) if capture.geometry is not None else None
                url = join_url(service.base_url, "sync", token, **({} if config.page_lip_sync else {"lipsync": "off"}))
                await page.start(url, mouth)
                capture.page_to_monotonic_s = page.page_to_monotonic_s
            async with asyncio.TaskGroup() as tasks:
                if page is not None and config.page_stalls_at_s:
                    tasks.create_task(_stall_page(page, config, capture.page_stalls))
                await asyncio.sleep(WARMUP_S + config.duration_s)
        finally:
            if page is not None:
                await page.stop()
                capture.page = page.result
            if capture.page_output is not None:
                capture.page_output.stop()
            stop_local.set()
            async with asyncio.timeout(20):
                await local_task
            if capture.monitor is not None:
                capture.monitor.stop()
            for sink in sinks:
                await sink.close()
            stop_remote.set()
            async with asyncio.timeout(20):
                await remote_task
    return capture


def robust_slope(xs: list[float], ys: list[float]) -> float | None:
    """Theil-Sen: the median of the slopes between all pairs of points, so a few glitches do not tilt it."""
    if len(xs) < 3:
        return None
    x, y = np.asarray(xs), np.asarray(ys)
    dx, dy = x[None, :] - x[:, None], y[None, :] - y[:, None]
    upper = np.triu(dx > 0, 1)
    return float(np.median(dy[upper] / dx[upper])) if upper.any() else None


def decode_mp4(
    path: Path, read: Callable[[np.ndarray], Any] | None = None
) -> tuple[list[float], list[Any], np.ndarray, float]:
    """Frame times and lumas (or what ``read`` makes of each), and the audio with the time of its first sample,
    as a player presents them."""
    times: list[float] = []
    lumas: list[Any] = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            times.append(float(frame.time or 0.0))
            luma = luma_plane(frame)
            lumas.append(luma if read is None else read(luma))
    parts: list[np.ndarray] = []
    start: float | None = None
    with av.open(str(path)) as container:
        for audio in container.decode(audio=0):
            if start is None:
                start = float(audio.time or 0.0)
            parts.append((audio.to_ndarray().reshape(-1) * 32767).astype(np.int16))
    return times, lumas, np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16), start or 0.0


# what the analysis needs of a frame: the brightness under the stamp and whether the stamp says a flash starts
# (test pattern), or the mouth region's darkness (the avatar speaking), read as each frame is captured so that a
# long run keeps two numbers per frame rather than its picture
FrameReading = tuple[float, bool | None]


def frame_reader(source: str, fps: int, geometry: FaceGeometry | None) -> Callable[[np.ndarray], FrameReading]:
    if source == "test-pattern":
        return lambda luma: (below_stamp_luma(luma), starts_a_flash(luma, fps))
    assert geometry is not None
    box = mouth_box(geometry)
    return lambda luma: (mouth_darkness(luma, box), None)


def analyse(capture: Capture, source: str, fps: int) -> list[dict[str, Any]]:
    results = []
    if capture.recorder is not None:
        times, readings, audio, audio_start = decode_mp4(capture.recorder, frame_reader(source, fps, capture.geometry))
        results.append(_offsets("recorder", source, times, readings, audio, audio_start, fps))
    if capture.camera is not None and capture.monitor is not None:
        times, readings = capture.camera.frames()
        audio, audio_start = capture.monitor.audio()
        row = _offsets("camera-mic", source, times, readings, audio, audio_start, fps)
        if capture.probe is not None:
            # the same offset split: as frames arrived, and what the camera and the microphone path each added
            brightness = [value for value, _ in readings]
            first = [starts for _, starts in readings]
            probe = capture.probe
            row["arrival_offset_ms"] = summary_ms([o * 1000 for o in paired_offsets(probe.flashes, probe.beeps)])
            camera_path = flash_beep_pairs(flash_onsets(times, brightness, first), probe.flashes)
            mic_path = flash_beep_pairs(beep_onsets(audio, audio_start), probe.beeps)
            row["camera_path_ms"] = summary_ms([o * 1000 for _, o in camera_path])
            row["mic_path_ms"] = summary_ms([o * 1000 for _, o in mic_path])
            row["camera_path_p50_per_5_min_ms"] = _medians_per_window(camera_path, 300.0)
            row["mic_path_p50_per_5_min_ms"] = _medians_per_window(mic_path, 300.0)
        results.append(row)
    if capture.page is not None and source == "test-pattern":
        results.append(_page_offsets(capture.page, fps))
        if capture.page_output is not None and capture.page_to_monotonic_s is not None:
            results.append(
                _page_output_offsets(
                    capture.page, capture.page_output, capture.page_to_monotonic_s, fps, capture.page_stalls
                )
            )
    elif capture.page is not None and capture.page_output is not None and capture.page_to_monotonic_s is not None:
        results.append(_page_speaking_offsets(capture.page, capture.page_output, capture.page_to_monotonic_s, fps))
    return results


async def _stall_page(page: PreviewPageCapture, config: SyncBenchConfig, noted: list[float]) -> None:
    """Stop the page's browser at each of ``config.page_stalls_at_s`` (seconds from now), noting when."""
    start = time.monotonic()
    for at_s in sorted(config.page_stalls_at_s):
        if at_s > WARMUP_S + config.duration_s:
            break
        await asyncio.sleep(max(0.0, start + at_s - time.monotonic()))
        noted.append(time.monotonic())
        await page.stall(config.page_stall_s)


def _page_speaking_offsets(
    page: dict[str, Any], output: MonitorCapture, page_to_monotonic_s: float, fps: int
) -> dict[str, Any]:
    """The avatar speaking on the page: each shown frame's mouth darkness (display time, mapped to the monotonic
    clock) against the voice the page played, fitted per window once Chromium's A/V sync has settled."""
    frames = [frame for frame in page.get("frames") or [] if frame[3] is not None]
    if frames:
        settled = frames[0][0] + (PAGE_SETTLE_S - WARMUP_S) * 1000  # _offsets skips WARMUP_S more
        frames = [frame for frame in frames if frame[0] >= settled]
    audio, audio_start = output.audio()
    times = [frame[0] / 1000 + page_to_monotonic_s for frame in frames]
    row = _offsets("page-output", "speaking", times, [(frame[3], None) for frame in frames], audio, audio_start, fps)
    row["method"] = (
        "in headless Chromium, from "
        f"{PAGE_SETTLE_S:.0f} s on (Chromium's A/V sync settled): the mouth darkness of each frame shown "
        "(requestVideoFrameCallback's expected display time, mapped to the monotonic clock) vs the energy of "
        f"what the unmuted <video> played into a PulseAudio null sink, cross-correlated per {SPEECH_WINDOW_S:.0f} s"
    )
    return row


def _page_flashes(page: dict[str, Any], fps: int, shift_s: float = 0.0) -> list[float]:
    """The display times of the page's flash onsets (after its first second), in seconds plus ``shift_s``."""
    frames = page.get("frames") or []
    times = [frame[0] / 1000 + shift_s for frame in frames]
    first = [frame[2] % fps == 0 for frame in frames]
    return [t for t in flash_onsets(times, [frame[1] for frame in frames], first) if times and t >= times[0] + 1.0]


def _page_output_offsets(
    page: dict[str, Any], output: MonitorCapture, page_to_monotonic_s: float, fps: int, stalls: list[float]
) -> dict[str, Any]:
    audio, audio_start = output.audio()
    pairs = flash_beep_pairs(_page_flashes(page, fps, page_to_monotonic_s), beep_onsets(audio, audio_start))
    ms = [offset * 1000 for _, offset in pairs]
    frames = page.get("frames") or []
    return {
        "sink": "page-output",
        "source": "test-pattern",
        "method": "in headless Chromium: requestVideoFrameCallback's expected display time of the first white frame "
        "(page clock mapped to the monotonic clock) vs the beep in what the unmuted <video> played into a "
        "PulseAudio null sink (its monitor recorded)",
        "offset_ms": summary_ms(ms),
        "abs_p95_ms": _abs_p95(ms),
        "values_ms": [round(v, 1) for v in ms],
        "settled_offset_ms": _settled(pairs, frames[0][0] / 1000 + page_to_monotonic_s if frames else 0.0),
        "p50_per_5_min_ms": _medians_per_window(pairs, 300.0),
        "pairs": len(ms),
        **_after_stalls(pairs, stalls),
        **_browser_estimate(page),
    }


def _after_stalls(pairs: list[tuple[float, float]], stalls: list[float]) -> dict[str, Any]:
    """With the page's browser stopped during the run: when (seconds from the first flash), and the offsets from
    ``PAGE_SETTLE_S`` after the first stop on (a stall can change how Chromium shows the picture for the rest of a
    session)."""
    if not stalls:
        return {}
    ms = [offset * 1000 for at, offset in pairs if at >= stalls[0] + PAGE_SETTLE_S]
    first = pairs[0][0] if pairs else stalls[0]
    return {
        "stalls_at_s": [round(at - first, 1) for at in stalls],
        "after_stall_offset_ms": {**summary_ms(ms), "abs_p95": _abs_p95(ms)},
    }


def _abs_p95(ms: list[float]) -> float | None:
    """The 95th percentile of the offsets' size, either way (ms); None without offsets."""
    return round(float(np.percentile(np.abs(ms), 95)), 1) if ms else None


def _settled(pairs: list[tuple[float, float]], first_frame_s: float) -> dict[str, Any]:
    """The offsets of the flashes shown once Chromium's A/V sync has had ``PAGE_SETTLE_S`` to settle."""
    ms = [offset * 1000 for at, offset in pairs if at >= first_frame_s + PAGE_SETTLE_S]
    return {**summary_ms(ms), "abs_p95": _abs_p95(ms)}


def _browser_estimate(page: dict[str, Any]) -> dict[str, Any]:
    """The browser's own reading of the offset once settled (inbound-rtp estimatedPlayoutTimestamp: sound minus
    picture on the sender's clock, positive with the picture late), and the holds the page's lip-sync trim set."""
    rows = page.get("estimates") or []
    settled = [row for row in rows if rows and row[0] >= rows[0][0] + PAGE_SETTLE_S * 1000]
    holds = [(row[2] or 0.0, row[3] or 0.0) for row in rows]
    frames = page.get("frames") or []
    # how long after WebRTC handed each frame over Chromium shows it (expectedDisplayTime - presentationTime): the
    # part of the picture's delay its estimate leaves out, which the trim adds
    lags = [frame[0] - frame[4] for frame in frames if len(frame) > 4 and frame[4] is not None]
    return {
        "browser_estimate_ms": summary_ms([row[1] for row in settled]),
        "display_lag_ms": summary_ms(lags),
        "browser_estimates": len(rows),
        "lip_sync_holds_ms": {
            "audio_max": round(max((a for a, _ in holds), default=0.0), 1),
            "video_max": round(max((v for _, v in holds), default=0.0), 1),
            "changes": sum(1 for before, after in zip(holds, holds[1:], strict=False) if before != after),
        },
    }


def _page_offsets(page: dict[str, Any], fps: int) -> dict[str, Any]:
    frames = page.get("frames") or []
    pairs = flash_beep_pairs(_page_flashes(page, fps), [at / 1000 for at in page.get("beeps") or []])
    ms = [offset * 1000 for _, offset in pairs]
    return {
        "sink": "page",
        "source": "test-pattern",
        "method": "in headless Chromium: requestVideoFrameCallback's expected display time of the first white frame "
        "vs the beep's output time from an AudioWorklet on the <video>'s stream (getOutputTimestamp), page clock",
        "offset_ms": summary_ms(ms),
        "abs_p95_ms": _abs_p95(ms),
        "values_ms": [round(v, 1) for v in ms],
        "settled_offset_ms": _settled(pairs, frames[0][0] / 1000 if frames else 0.0),
        "p50_per_5_min_ms": _medians_per_window(pairs, 300.0),
        "pairs": len(ms),
        "frames": len(frames),
        "audio_context_latency_ms": page.get("audio_latency_ms"),  # base, output: part of the beep's output time
        "error": page.get("error"),
        **_browser_estimate(page),
    }


def _offsets(
    sink: str,
    source: str,
    times: list[float],
    readings: list[FrameReading],
    audio: np.ndarray,
    audio_start: float,
    fps: int,
) -> dict[str, Any]:
    skip = WARMUP_S
    if source == "test-pattern":
        brightness = [value for value, _ in readings]
        first = [starts for _, starts in readings]
        flashes = [t for t in flash_onsets(times, brightness, first) if t >= (times[0] if times else 0) + skip]
        pairs = flash_beep_pairs(flashes, beep_onsets(audio, audio_start))
        offsets = [offset for _, offset in pairs]
        method = "first white frame vs first sample of the 1 kHz beep, paired within 400 ms"
        slope = robust_slope([at / 60 for at, _ in pairs], [offset * 1000 for _, offset in pairs])
        extra: dict[str, Any] = {
            "pairs": len(offsets),
            "drift_ms_per_min": None if slope is None else round(slope, 3),
            "p50_per_5_min_ms": _medians_per_window(pairs, 300.0),
        }
    else:
        darkness = [value for value, _ in readings]
        offsets, correlations = [], []
        begin_at = times[0] + skip if times else 0.0
        edges = np.arange(begin_at, (times[-1] if times else 0.0) - SPEECH_WINDOW_S / 2, SPEECH_WINDOW_S)
        for begin in edges:
            pick = [i for i, t in enumerate(times) if begin <= t < begin + SPEECH_WINDOW_S]
            fit = mouth_energy_offset([times[i] for i in pick], [darkness[i] for i in pick], audio, audio_start, fps)
            if fit is not None and fit.correlation > 0.3:
                offsets.append(fit.offset_s)
                correlations.append(fit.correlation)
        method = (
            f"mouth darkness vs audio energy per frame period, cross-correlated in 5 ms steps per "
            f"{SPEECH_WINDOW_S:.0f} s window"
        )
        extra = {"windows": len(offsets), "r_p50": round(float(np.median(correlations)), 3) if correlations else None}
    ms = [o * 1000 for o in offsets]
    return {
        "sink": sink,
        "source": source,
        "method": method,
        "offset_ms": summary_ms(ms),
        "abs_p95_ms": _abs_p95(ms),
        "values_ms": [round(v, 1) for v in ms],
        **extra,
    }


def _medians_per_window(pairs: list[tuple[float, float]], window_s: float) -> list[float]:
    """The median offset (ms) of each consecutive ``window_s`` of the run: flat over a long run, or not."""
    if not pairs:
        return []
    start = pairs[0][0]
    windows: dict[int, list[float]] = {}
    for at, offset in pairs:
        windows.setdefault(int((at - start) // window_s), []).append(offset * 1000)
    return [round(float(np.median(values)), 1) for _, values in sorted(windows.items())]


def print_table(result: dict[str, Any]) -> None:
    print("A/V offset at the sinks (video - audio; positive: picture late)")
    print(f"{'sink':12} {'source':13} {'p50 ms':>8} {'p95 ms':>8} {'|p95| ms':>9} {'n':>4}  method")
    for row in result.get("sinks", []):
        offset = row["offset_ms"]
        print(
            f"{row['sink']:12} {row['source']:13} {_ms(offset['p50'])} {_ms(offset['p95'])} "
            f"{_ms(row['abs_p95_ms'], 9)} {offset['count']:>4}  {row['method']}"
        )
        settled = row.get("settled_offset_ms")
        if settled and settled["count"]:
            print(
                f"{'':12} {'settled':13} {_ms(settled['p50'])} {_ms(settled['p95'])} {_ms(settled.get('abs_p95'), 9)} "
                f"{settled['count']:>4}  the same, from {PAGE_SETTLE_S:.0f} s after the first frame (Chromium's A/V "
                "sync settled)"
            )
        after = row.get("after_stall_offset_ms")
        if after and after["count"]:
            print(
                f"{'':12} {'after stall':13} {_ms(after['p50'])} {_ms(after['p95'])} {_ms(after.get('abs_p95'), 9)} "
                f"{after['count']:>4}  the same, from {PAGE_SETTLE_S:.0f} s after the page's browser was first "
                f"stopped (stopped at {', '.join(f'{at:.0f}' for at in row['stalls_at_s'])} s)"
            )
        estimate = row.get("browser_estimate_ms")
        if estimate and estimate["count"]:
            holds = row["lip_sync_holds_ms"]
            print(
                f"{'':12} {'browser':13} {_ms(estimate['p50'])} {_ms(estimate['p95'])} {'':9} {estimate['count']:>4}  "
                f"the browser's own estimate (estimatedPlayoutTimestamp), settled; the page's trim held audio up to "
                f"{holds['audio_max']:.0f} ms, video up to {holds['video_max']:.0f} ms, {holds['changes']} changes"
            )
        lag = row.get("display_lag_ms")
        if lag and lag["count"]:
            print(
                f"{'':12} {'display lag':13} {_ms(lag['p50'])} {_ms(lag['p95'])} {'':9} {lag['count']:>4}  "
                "how long after WebRTC handed a frame over Chromium shows it (expectedDisplayTime - "
                "presentationTime), which the trim adds to the picture's estimate"
            )


def _ms(value: float | None, width: int = 8) -> str:
    return f"{value:>{width}.1f}" if value is not None else f"{'-':>{width}}"
