"""Two clones on one box: fps per clone, the second clone's memory, each clone's turn latency while the other speaks.

``python -m benchmarks.two_clones [--size 512x512] [--seconds 20] [--json PATH]``. Signaling, a
:class:`~peer_remote.rooms.RoomHost` with rooms ``one`` and ``two`` (the embedded CPU backends: llama.cpp SmolLM2,
Piper, the portrait), and one local peer per room, all in this process on 127.0.0.1. Each figure comes with its
baseline from the same run: one clone alone first, then both.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import psutil

from benchmarks.harness.processes import loopback_peer_fields
from media.protocol import DataMessage, Metrics, Transcript, Turn
from media.settings import parse_size
from peer_local.service import LocalPeer
from peer_local.settings import LocalSettings
from peer_remote.rooms import RoomHost
from peer_remote.service import RemotePeer
from peer_remote.settings import RemoteSettings
from signaling.server import SignalingService
from signaling.settings import SignalingSettings

ROOMS = ("one", "two")
QUESTION = "What is your favourite colour?"
LONG_QUESTION = "Tell me a long story about the sea and the ships on it."


class FrameCounter:
    """A sink that counts decoded video frames."""

    def __init__(self) -> None:
        self.frames = 0
        self.first = asyncio.Event()

    def on_video(self, frame: av.VideoFrame, arrival: float) -> None:
        self.frames += 1
        self.first.set()

    def on_audio(self, frame: av.AudioFrame, arrival: float) -> None:
        return None

    def on_connection(self, connected: bool) -> None:
        return None

    async def close(self) -> None:
        return None


class RoomProbe:
    """What one room's clone says, as events: turns and their metrics."""

    def __init__(self, peer: RemotePeer) -> None:
        self.said: list[DataMessage] = []
        self.changed = asyncio.Event()
        peer.avatar.said.connect(self._hear)

    def _hear(self, message: DataMessage) -> None:
        self.said.append(message)
        self.changed.set()

    async def wait_for(self, turn_id: str, kind: type, state: str | None = None, timeout_s: float = 300) -> Any:
        async with asyncio.timeout(timeout_s):
            while True:
                for message in self.said:
                    if (
                        isinstance(message, kind)
                        and getattr(message, "turn_id", None) == turn_id
                        and (state is None or getattr(message, "state", None) == state)
                    ):
                        return message
                self.changed.clear()
                await self.changed.wait()


def rss_mib() -> float:
    gc.collect()
    return round(psutil.Process(os.getpid()).memory_info().rss / 2**20, 1)


@contextlib.asynccontextmanager
async def running(coro: Any) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(coro(stop))
    try:
        yield stop
    finally:
        stop.set()
        async with asyncio.timeout(30):
            await task


async def fps(counters: list[FrameCounter], seconds: float) -> list[float]:
    before = [c.frames for c in counters]
    started = time.monotonic()
    await asyncio.sleep(seconds)  # a measurement window, not synchronisation
    elapsed = time.monotonic() - started
    return [round((c.frames - b) / elapsed, 1) for c, b in zip(counters, before, strict=True)]


async def ask(local: LocalPeer, turn_id: str, text: str, timeout_s: float = 60.0) -> None:
    """Send a transcript, waiting for the data channel if the call is being re-established (a loaded machine)."""
    async with asyncio.timeout(timeout_s):
        while not local.send(Transcript(turn_id=turn_id, text=text, language="en")):
            session = local.session
            if session is not None and not session.channel_open.is_set():
                await session.channel_open.wait()
            else:  # no call, or one that just ended: the next one
                local.session_changed.clear()
                await local.session_changed.wait()


async def first_audio_ms(probe: RoomProbe, local: LocalPeer, turn_id: str, text: str) -> float:
    """Transcript received -> first audio frame sent, as the clone's own metrics report it."""
    await ask(local, turn_id, text)
    metrics: Metrics = await probe.wait_for(turn_id, Metrics)
    return float(metrics.values.get("first_audio_frame_sent_ms", float("nan")))


async def run_two_clones(width: int, height: int, seconds: float) -> dict[str, Any]:
    token = secrets.token_urlsafe(32)
    async with SignalingService(SignalingSettings.load({"host": "127.0.0.1", "port": 0}), token) as service:
        fields = {**loopback_peer_fields(service.base_url, ROOMS[0], token), "source": "avatar"}
        settings = RemoteSettings.load({**fields, "width": width, "height": height, "max_tokens": 32})
        rss_start = rss_mib()
        host = RoomHost(settings, ROOMS)
        peers = [host.peers[room] for room in ROOMS]
        probes = [RoomProbe(peer) for peer in peers]
        counters = [FrameCounter(), FrameCounter()]
        locals_ = [
            LocalPeer(LocalSettings.load(loopback_peer_fields(service.base_url, room, token)), [counter])  # type: ignore[list-item]
            for room, counter in zip(ROOMS, counters, strict=True)
        ]
        result: dict[str, Any] = {"bench": "two_clones", "size": f"{width}x{height}", "fps_target": settings.fps}

        await peers[0].avatar.prepare()
        async with running(peers[0].run), running(locals_[0].run):
            async with asyncio.timeout(60):
                await counters[0].first.wait()
            await asyncio.sleep(2.0)  # warm-up before measuring
            alone_fps = (await fps(counters[:1], seconds))[0]
            rss_one = rss_mib()
            await first_audio_ms(probes[0], locals_[0], "warm-up", QUESTION)  # the models' first inference is slow
            await probes[0].wait_for("warm-up", Turn, "done")
            alone_ms = await first_audio_ms(probes[0], locals_[0], "alone", QUESTION)
            await probes[0].wait_for("alone", Turn, "done")

            await peers[1].avatar.prepare()
            async with running(peers[1].run), running(locals_[1].run):
                async with asyncio.timeout(60):
                    await counters[1].first.wait()
                await asyncio.sleep(2.0)
                both_fps = await fps(counters, seconds)
                rss_two = rss_mib()
                # room two speaks (a long answer); room one is asked meanwhile, and then the other way round
                await ask(locals_[1], "story-2", LONG_QUESTION)
                await probes[1].wait_for("story-2", Turn, "speaking")
                busy_ms_one = await first_audio_ms(probes[0], locals_[0], "busy-1", QUESTION)
                await probes[1].wait_for("story-2", Turn, "done")
                await probes[0].wait_for("busy-1", Turn, "done")
                await ask(locals_[0], "story-1", LONG_QUESTION)
                await probes[0].wait_for("story-1", Turn, "speaking")
                busy_ms_two = await first_audio_ms(probes[1], locals_[1], "busy-2", QUESTION)
                await probes[0].wait_for("story-1", Turn, "done")
                await probes[1].wait_for("busy-2", Turn, "done")
        result.update(
            {
                "fps_one_clone_alone": alone_fps,
                "fps_per_clone_two_clones": both_fps,
                "fps_ratio_two_vs_alone": [round(f / alone_fps, 2) if alone_fps else None for f in both_fps],
                "rss_mib_start": rss_start,
                "rss_mib_one_clone": rss_one,
                "rss_mib_two_clones": rss_two,
                "rss_mib_second_clone": round(rss_two - rss_one, 1),
                "first_audio_ms_alone": alone_ms,
                "first_audio_ms_while_other_speaks": [busy_ms_one, busy_ms_two],
                "latency_ratio_while_other_speaks": [round(v / alone_ms, 2) for v in (busy_ms_one, busy_ms_two)],
                "cpu_count": os.cpu_count(),
                "load_average_1m": round(os.getloadavg()[0], 1),
            }
        )
    return result


def print_table(result: dict[str, Any]) -> None:
    print(
        f"two clones at {result['size']}, target {result['fps_target']} fps (load average {result['load_average_1m']})"
    )
    print(f"  fps, one clone alone:        {result['fps_one_clone_alone']}")
    print(
        f"  fps per clone, two clones:   {result['fps_per_clone_two_clones']}  ratio {result['fps_ratio_two_vs_alone']}"
    )
    print(f"  RSS one clone -> two clones: {result['rss_mib_one_clone']} -> {result['rss_mib_two_clones']} MiB")
    print(f"  second clone's memory:       {result['rss_mib_second_clone']} MiB")
    print(f"  first audio, alone:          {result['first_audio_ms_alone']:.0f} ms")
    busy = result["first_audio_ms_while_other_speaks"]
    ratio = result["latency_ratio_while_other_speaks"]
    print(f"  first audio, other speaking: {busy[0]:.0f} / {busy[1]:.0f} ms  ratio {ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", default="512x512", help="video size per clone (default 512x512)")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds per fps window (default 20)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the results here")
    args = parser.parse_args()
    width, height = parse_size(args.size)
    result = asyncio.run(run_two_clones(width, height, args.seconds))
    print_table(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
