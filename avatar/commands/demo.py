"""``avatar demo``: the whole system on this machine with the embedded CPU defaults."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from avatar.demo import Demo, DemoSettings
from avatar.options import add_settings_flags, explicit_devices, load_settings


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="run signaling, the avatar and the local peer together on this machine",
        description="Start the signaling server on 127.0.0.1 with a fresh token, the avatar (remote peer) and the "
        "local peer, then print the preview page's join URL. Ctrl-C stops everything.",
    )
    parser.add_argument(
        "--bench-stamp",
        action="store_true",
        default=None,
        help="benchmarks only: stamp the avatar's frames (top rows) so the answer's video can be timed",
    )
    add_settings_flags(parser, DemoSettings, exclude=("bench_stamp",))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(DemoSettings, args, "demo", {"bench_stamp": args.bench_stamp})
    if settings is None:
        return 2
    from peer_local.asr import AsrError
    from peer_local.audio_input import AudioInputError
    from peer_local.profile.store import ProfileError
    from peer_local.sinks.virtual_camera import VirtualCameraError
    from peer_local.smart_turn import SmartTurnModelError

    try:
        asyncio.run(Demo(settings, explicit_devices(args)).run())
    except (AudioInputError, AsrError, VirtualCameraError, ProfileError, SmartTurnModelError) as exc:
        print(f"avatar demo: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"avatar demo: {exc.strerror or exc} (is port {settings.port} in use? try --port 0)", file=sys.stderr)
        return 1
    return 0
