"""A userspace network impairment bridge (kernel netem is absent on these machines).

It forwards Ethernet frames between two interfaces of a middle network namespace through AF_PACKET sockets,
each way with a fixed delay, random jitter, random loss, reordering and periodic loss bursts:

    ns A (10.x.0.1) --veth-- [ ma  bridge  mb ] --veth-- ns B (10.x.0.2)

Spec: ``delay=50ms,jitter=5ms,loss=3%,reorder=1%,burst=300ms/10s`` (every key optional; applied each way).
Run as ``python -m benchmarks.harness.impairment IF_A IF_B --spec SPEC`` inside the middle namespace.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import re
import signal
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s)$")


def _seconds(text: str) -> float:
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a duration like 50ms or 2s")
    return float(match.group(1)) / (1000.0 if match.group(2) == "ms" else 1.0)


def _fraction(text: str) -> float:
    value = float(text.strip().rstrip("%")) / (100.0 if text.strip().endswith("%") else 1.0)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{text!r} is not a fraction between 0 and 100%")
    return value


@dataclass(frozen=True)
class ImpairmentSpec:
    """What happens to each frame, each way."""

    delay_s: float = 0.0
    jitter_s: float = 0.0
    loss: float = 0.0
    reorder: float = 0.0  # share of frames held back by an extra delay_s/2 + 10 ms, so later ones overtake them
    burst_s: float = 0.0  # drop everything for burst_s ...
    burst_every_s: float = 0.0  # ... once every burst_every_s (the first burst after one period)

    @classmethod
    def parse(cls, text: str) -> ImpairmentSpec:
        values: dict[str, float] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            key, _, value = item.partition("=")
            if key == "delay":
                values["delay_s"] = _seconds(value)
            elif key == "jitter":
                values["jitter_s"] = _seconds(value)
            elif key == "loss":
                values["loss"] = _fraction(value)
            elif key == "reorder":
                values["reorder"] = _fraction(value)
            elif key == "burst":
                length, _, every = value.partition("/")
                values["burst_s"] = _seconds(length)
                values["burst_every_s"] = _seconds(every or "10s")
            else:
                raise ValueError(f"unknown impairment {key!r} (delay, jitter, loss, reorder, burst)")
        return cls(**values)

    def describe(self) -> str:
        parts = [f"delay={self.delay_s * 1000:g}ms"]
        if self.jitter_s:
            parts.append(f"jitter={self.jitter_s * 1000:g}ms")
        if self.loss:
            parts.append(f"loss={self.loss * 100:g}%")
        if self.reorder:
            parts.append(f"reorder={self.reorder * 100:g}%")
        if self.burst_s:
            parts.append(f"burst={self.burst_s * 1000:g}ms/{self.burst_every_s:g}s")
        return ",".join(parts)


@dataclass
class DirectionStats:
    forwarded: int = 0
    lost: int = 0
    burst_lost: int = 0
    reordered: int = 0
    bursts: list[float] = field(default_factory=list)  # wall-clock start of each burst


class Impairer:
    """The per-frame decision, seeded and clock-driven so it can be tested without a network."""

    def __init__(self, spec: ImpairmentSpec, seed: int, started: float) -> None:
        self.spec = spec
        self.rng = random.Random(seed)
        self.started = started
        self.stats = DirectionStats()

    def in_burst(self, now: float) -> bool:
        spec = self.spec
        if not spec.burst_s or not spec.burst_every_s:
            return False
        elapsed = now - self.started
        return elapsed >= spec.burst_every_s and (elapsed % spec.burst_every_s) < spec.burst_s

    def delay_for(self, now: float) -> float | None:
        """Seconds to hold this frame, or None to drop it."""
        spec = self.spec
        if self.in_burst(now):
            burst_start = now - ((now - self.started) % spec.burst_every_s)
            if not self.stats.bursts or self.stats.bursts[-1] != burst_start:
                self.stats.bursts.append(burst_start)
            self.stats.burst_lost += 1
            return None
        if spec.loss and self.rng.random() < spec.loss:
            self.stats.lost += 1
            return None
        delay = spec.delay_s + (self.rng.uniform(-spec.jitter_s, spec.jitter_s) if spec.jitter_s else 0.0)
        if spec.reorder and self.rng.random() < spec.reorder:
            delay += spec.delay_s / 2 + 0.010
            self.stats.reordered += 1
        self.stats.forwarded += 1
        return max(0.0, delay)


def _packet_socket(interface: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((interface, 0))
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    return sock


async def run_bridge(
    interface_a: str, interface_b: str, spec: ImpairmentSpec, seed: int, stop: asyncio.Event
) -> dict[str, DirectionStats]:
    """Forward frames both ways until ``stop``; returns the per-direction statistics."""
    loop = asyncio.get_running_loop()
    sockets = {interface_a: _packet_socket(interface_a), interface_b: _packet_socket(interface_b)}
    now = time.time()
    impairers = {interface_a: Impairer(spec, seed, now), interface_b: Impairer(spec, seed + 1, now)}
    peer = {interface_a: interface_b, interface_b: interface_a}

    def send(target: str, frame: bytes) -> None:
        with contextlib.suppress(OSError):  # a full queue or a frame over the MTU is a loss, as on a real link
            sockets[target].send(frame)

    def readable(source: str) -> None:
        sock = sockets[source]
        while True:
            try:
                frame, address = sock.recvfrom(65535)
            except BlockingIOError:
                return
            if address[2] == PACKET_OUTGOING:
                continue  # our own transmissions on this interface
            delay = impairers[source].delay_for(time.time())
            if delay is None:
                continue
            if delay <= 0:
                send(peer[source], frame)
            else:
                loop.call_later(delay, send, peer[source], frame)

    for name, sock in sockets.items():
        loop.add_reader(sock.fileno(), readable, name)
    try:
        await stop.wait()
    finally:
        for sock in sockets.values():
            loop.remove_reader(sock.fileno())
            sock.close()
    return {"a_to_b": impairers[interface_a].stats, "b_to_a": impairers[interface_b].stats}


async def _main(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    spec = ImpairmentSpec.parse(args.spec)
    print(f"bridging {args.a} <-> {args.b}: {spec.describe()}", flush=True)
    stats = await run_bridge(args.a, args.b, spec, args.seed, stop)
    if args.stats:
        document = json.dumps({k: asdict(v) for k, v in stats.items()}, indent=2)
        await asyncio.to_thread(Path(args.stats).write_text, document)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--spec", default="")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stats", help="write per-direction counts here on exit")
    asyncio.run(_main(parser.parse_args()))
