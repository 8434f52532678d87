"""``avatar local``: the person's laptop peer."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from avatar.options import add_settings_flags, explicit_devices, load_settings, token_problem
from avatar.python_check import windows_python_problem
from peer_local.settings import LocalSettings
from signaling.client import SignalingAuthError


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "local",
        help="run the local peer (receives the avatar; records or feeds sinks)",
        description="Join a room as the local peer, offer to the avatar, decode its audio and video into sinks, "
        "and reconnect by itself when the avatar or the connection goes away.",
    )
    add_settings_flags(parser, LocalSettings)
    parser.add_argument("--duration", type=float, metavar="S", help="stop after S seconds of received media")
    parser.add_argument(
        "--measure",
        type=Path,
        metavar="PATH",
        help="read the remote's test pattern and write latency figures (JSON) here on exit",
    )
    parser.add_argument(
        "--measure-warmup",
        type=float,
        default=2.0,
        metavar="S",
        help="seconds of media to ignore before measuring",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    problem = windows_python_problem()
    if problem:
        print(f"avatar local: {problem}", file=sys.stderr)
        return 2
    settings = load_settings(LocalSettings, args, "local")
    if settings is None:
        return 2
    if token_problem(settings, "local"):
        return 2
    from peer_local.asr import AsrError
    from peer_local.audio_input import AudioInputError
    from peer_local.profile.store import ProfileError
    from peer_local.runner import LocalRun
    from peer_local.sinks.virtual_camera import VirtualCameraError
    from peer_local.smart_turn import SmartTurnModelError
    from peer_local.vad import VadModelError

    try:
        asyncio.run(
            LocalRun(
                settings,
                args.duration,
                args.measure,
                args.measure_warmup,
                explicit_input=settings.input != "mic",
                explicit_devices=explicit_devices(args),
            ).main()
        )
    except (
        SignalingAuthError,
        AudioInputError,
        AsrError,
        VadModelError,
        SmartTurnModelError,
        VirtualCameraError,
        ProfileError,
    ) as exc:
        print(f"avatar local: {exc}", file=sys.stderr)
        return 1
    return 0
