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


async def main(seconds: float) -> None:
    sink = VirtualMicSink(find_output_device("avatar_mic"))  # the default name, routed to the null sink
    sink.start()
    if not sink.playing.wait(timeout=10):  # the device starts pulling (PulseAudio can take a moment)
        raise SystemExit("the output stream never started")
    signal = chirp(seconds)
    start = time.monotonic()
    for n, i in enumerate(range(0, signal.size, 960)):
        frame = av.AudioFrame.from_ndarray(signal[i : i + 960].reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48_000
        sink.on_audio(frame, time.time())
        await asyncio.sleep(max(0.0, start + (n + 1) * 0.02 - time.monotonic()))
    await asyncio.sleep(0.5)
    print(
        f"underruns={sink.buffer.underruns} adjusted={sink.buffer.adjusted} dropped={sink.buffer.dropped} latency={sink.output_latency_s:.3f}",
        flush=True,
    )
    await sink.close()


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1])))
