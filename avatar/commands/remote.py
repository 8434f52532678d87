"""``avatar remote``: the avatar peer."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from avatar.options import add_settings_flags, load_settings, token_problem
from media.settings import parse_size
from peer_remote.face.base import FaceError
from peer_remote.llm.base import LlmError
from peer_remote.settings import RemoteSettings
from peer_remote.tts.base import TtsError
from signaling.client import SignalingAuthError
from signaling.server import install_stop_signals


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "remote",
        help="run the avatar peer (streams audio+video to the local peer and viewers)",
        description="Join a room as the remote (avatar) peer and answer every subscriber with one shared stream.",
    )
    size = parser.add_argument("--size", help="video size WIDTHxHEIGHT (sets width and height)")
    width, height = (RemoteSettings.model_fields[side].default for side in ("width", "height"))
    size.shown_default = f"{width}x{height}"  # type: ignore[attr-defined]  # read by avatar.help_format
    add_settings_flags(parser, RemoteSettings, exclude=("width", "height"))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    size: dict[str, int] = {}
    if args.size:
        try:
            size["width"], size["height"] = parse_size(args.size)
        except ValueError as exc:
            print(f"avatar remote: {exc}", file=sys.stderr)
            return 2
    settings = load_settings(RemoteSettings, args, "remote", size)
    if settings is None:
        return 2
    if token_problem(settings, "remote"):
        return 2
    try:
        asyncio.run(_main(settings))
    except (SignalingAuthError, LlmError, TtsError, FaceError) as exc:
        print(f"avatar remote: {exc}", file=sys.stderr)
        return 1
    return 0


async def _main(settings: RemoteSettings) -> None:
    from peer_remote.service import RemotePeer

    stop = asyncio.Event()
    install_stop_signals(stop)
    await RemotePeer(settings).run(stop)
