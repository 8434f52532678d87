"""Profile sync figures: how long the person's profile takes to reach the avatar over the data channel, how long
the avatar takes to prepare it, and what a reconnect with the same profile costs.

The profile is enrolment-sized: the passage spoken (espeak-ng, 16 kHz), the bundled portrait as face.png, a
3 s face clip and the persona template. Signaling, the avatar (embedded backends, 512x512) and the local peer
run in this process on 127.0.0.1. Prints a table; --json PATH writes the figures.

    uv run python benchmarks/profile_sync.py --repeat 3 --json artifacts/bench-profile-sync.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from benchmarks.harness.processes import loopback_peer_fields
from benchmarks.harness.speech import espeak
from media.profile.face_geometry import default_portrait
from media.profile.persona import TEMPLATE
from media.protocol import DataMessage, ProfileStatus
from peer_local.profile.face_enroll import write_clip
from peer_local.profile.store import Profile
from peer_local.profile.sync import ProfileSender
from peer_local.profile.voice_enroll import PASSAGE
from peer_local.service import LocalPeer
from peer_local.settings import LocalSettings
from peer_remote.service import RemotePeer
from peer_remote.settings import RemoteSettings
from signaling.server import SignalingService
from signaling.settings import SignalingSettings


def make_profile(root: Path) -> Profile:
    profile = Profile.open(str(root / "me"), create=True)
    portrait = np.ascontiguousarray(default_portrait()[:, ::-1])  # mirrored: a face the avatar has not prepared
    cv2.imwrite(str(profile.file("face.png")), cv2.cvtColor(portrait, cv2.COLOR_RGB2BGR))
    frames = [np.roll(portrait, shift, axis=1) for shift in range(75)]  # 3 s at 25 fps, a slow pan
    write_clip(profile.file("face.mp4"), frames, 25)
    espeak(PASSAGE, profile.file("voice.wav"))
    profile.file("voice.txt").write_text(PASSAGE, encoding="utf-8")
    profile.file("persona.toml").write_text(TEMPLATE, encoding="utf-8")
    profile.write_manifest()
    return profile


class StatusTimes:
    """When each profile-status state first arrived after the data channel opened."""

    def __init__(self) -> None:
        self.opened: float | None = None
        self.states: dict[str, float] = {}
        self.changed = asyncio.Event()

    def on_open(self) -> None:
        self.opened = time.perf_counter()

    def on_message(self, message: DataMessage) -> None:
        if isinstance(message, ProfileStatus):
            self.states.setdefault(message.state, time.perf_counter())
            self.changed.set()

    async def until(self, state: str, timeout_s: float = 120.0) -> None:
        async with asyncio.timeout(timeout_s):
            while state not in self.states:
                self.changed.clear()
                await self.changed.wait()

    def ms(self, state: str) -> float | None:
        if self.opened is None or state not in self.states:
            return None
        return round(1000 * (self.states[state] - self.opened), 1)


async def connect_once(fields: dict[str, Any], profile: Profile) -> tuple[StatusTimes, ProfileSender]:
    local = LocalPeer(LocalSettings.load(fields), [])
    times = StatusTimes()
    local.channel_opened.connect(times.on_open)
    local.message_received.connect(times.on_message)
    sender = ProfileSender(local, profile)
    stop = asyncio.Event()
    task = asyncio.create_task(local.run(stop))
    try:
        await times.until("ready")
    finally:
        stop.set()
        async with asyncio.timeout(15):
            await task
    return times, sender


async def run(repeat: int) -> dict[str, Any]:
    token = secrets.token_urlsafe(16)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        profile = make_profile(root)
        total_bytes = sum(f.bytes for f in profile.files())
        async with SignalingService(SignalingSettings.load({"host": "127.0.0.1", "port": 0}), token) as service:
            for index in range(repeat):
                fields = loopback_peer_fields(service.base_url, "sync", token)
                remote_settings = RemoteSettings.load(
                    {
                        **fields,
                        "source": "avatar",
                        "profile_cache_dir": root / f"cache-{index}",  # a fresh avatar each run
                        "face_cache_dir": root / f"faces-{index}",
                    }
                )
                remote = RemotePeer(remote_settings)
                stop = asyncio.Event()
                remote_task = asyncio.create_task(remote.run(stop))
                try:
                    async with asyncio.timeout(120):
                        await remote.connected.wait()
                    first, sender = await connect_once(fields, profile)
                    again, second = await connect_once(fields, profile)
                finally:
                    stop.set()
                    async with asyncio.timeout(30):
                        await remote_task
                received = first.states.get("preparing")
                transfer_s = (received - first.opened) if received and first.opened else None
                runs.append(
                    {
                        "files": len(sender.files),
                        "bytes": total_bytes,
                        "chunks": sender.chunks_sent,
                        "first_sync_to_preparing_ms": first.ms("preparing"),
                        "first_sync_to_ready_ms": first.ms("ready"),
                        "prepare_ms": round(first.ms("ready") - first.ms("preparing"), 1)  # type: ignore[operator]
                        if first.ms("preparing") is not None
                        else None,
                        "throughput_mib_s": round(total_bytes / 2**20 / transfer_s, 2) if transfer_s else None,
                        "reconnect_to_ready_ms": again.ms("ready"),
                        "reconnect_chunks": second.chunks_sent,
                        "preparations": remote.avatar.profiles.preparations,
                    }
                )
    keys = ("first_sync_to_preparing_ms", "first_sync_to_ready_ms", "prepare_ms", "reconnect_to_ready_ms")
    return {
        "bench": "profile-sync",
        "repeat": repeat,
        "runs": runs,
        "median": {k: statistics.median(r[k] for r in runs if r[k] is not None) for k in keys},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, metavar="PATH")
    args = parser.parse_args()
    result = asyncio.run(run(args.repeat))
    for i, r in enumerate(result["runs"], 1):
        print(
            f"run {i}: {r['files']} files, {r['bytes'] / 1024:.0f} KiB in {r['chunks']} chunks; "
            f"received in {r['first_sync_to_preparing_ms']} ms ({r['throughput_mib_s']} MiB/s), "
            f"prepared in {r['prepare_ms']} ms, ready {r['first_sync_to_ready_ms']} ms after the channel opened; "
            f"reconnect: ready in {r['reconnect_to_ready_ms']} ms with {r['reconnect_chunks']} chunks sent, "
            f"{r['preparations']} preparation(s) in all"
        )
    print("median:", result["median"])
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
