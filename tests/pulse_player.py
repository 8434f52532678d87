"""Run by tests in a child process (PortAudio reads PULSE_* at start): plays a chirp into the virtual mic sink
at the network's pace (absolute schedule), like the local peer does."""

from __future__ import annotations

import asyncio
import sys
import time

import av
import numpy as np

from peer_local.sinks.virtual_mic import VirtualMicSink, find_output_device


def chirp(seconds: float) -> np.ndarray:
    t = np.arange(int(48_000 * seconds)) / 48_000
    return (np.sin(2 * np.pi * (200 + 300 * t) * t) * 10_000).astype(np.int16)


async def main(seconds: float, stall_at_s: float | None = None, stall_s: float = 0.0) -> None:
    """Play ``seconds`` of chirp; with ``stall_at_s``, no frame arrives for ``stall_s`` from then, and the held ones
    all at once after (an event loop that stalled), and the latency the camera would wait is printed around it."""
    sink = VirtualMicSink(find_output_device("avatar_mic"))  # the default name, routed to the null sink
    sink.start()
    if not sink.playing.wait(timeout=10):  # the device starts pulling (PulseAudio can take a moment)
        raise SystemExit("the output stream never started")
    signal = chirp(seconds)
    start = time.monotonic()
    readings: dict[str, float] = {}
    resumed: float | None = None
    for n, i in enumerate(range(0, signal.size, 960)):
        frame = av.AudioFrame.from_ndarray(signal[i : i + 960].reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48_000
        due = time.time() - (time.monotonic() - (start + n * 0.02))  # when it would arrive with no stall
        sink.on_audio(frame, due)
        if stall_at_s is not None and n * 0.02 <= stall_at_s < (n + 1) * 0.02:
            readings["before"] = sink.output_latency_s
            await asyncio.sleep(stall_s)
            resumed = time.monotonic()
        if resumed is not None:
            for name, after_s in (("after_100ms", 0.1), ("after_500ms", 0.5)):
                if name not in readings and time.monotonic() >= resumed + after_s:
                    readings[name] = sink.output_latency_s
        await asyncio.sleep(max(0.0, start + (n + 1) * 0.02 - time.monotonic()))
    await asyncio.sleep(0.5)
    if readings:
        print(" ".join(f"{name}={value:.4f}" for name, value in readings.items()), flush=True)
    print(
        f"underruns={sink.buffer.underruns} adjusted={sink.buffer.adjusted} dropped={sink.buffer.dropped} latency={sink.output_latency_s:.3f}",
        flush=True,
    )
    await sink.close()


if __name__ == "__main__":
    stall = (float(sys.argv[2]), float(sys.argv[3])) if len(sys.argv) > 3 else (None, 0.0)
    asyncio.run(main(float(sys.argv[1]), *stall))
