"""``avatar remote``: the avatar peer."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from avatar.options import (
    PEER_FIELDS,
    SPEAKING_FIELDS,
    add_peer_arguments,
    add_speaking_arguments,
    fields_of,
    load_settings,
    token_problem,
)
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
    add_peer_arguments(parser)
    parser.add_argument(
        "--source",
        choices=["avatar", "test-pattern"],
        help="what to stream: the avatar (default) or a measurable test pattern",
    )
    parser.add_argument("--size", help="video size WIDTHxHEIGHT (default 512x512)")
    parser.add_argument("--fps", type=int, help="video frame rate; must divide 48000 (default 25)")
    parser.add_argument("--codec", choices=["VP8", "H264"], help="video codec (default VP8)")
    parser.add_argument("--x264-preset", help="x264 preset when the codec is H264 (default veryfast)")
    parser.add_argument(
        "--lookahead", type=float, dest="lookahead_s", help="seconds rendered ahead of the clock (default 0.2)"
    )
    parser.add_argument(
        "--publish-whip",
        metavar="URL",
        help="also publish the stream to this WHIP endpoint (an SFU's, for a large audience): one more encode, "
        "republished with backoff when the SFU restarts",
    )
    parser.add_argument(
        "--publish-token", metavar="T", help="bearer token for --publish-whip (or AVATAR_PUBLISH_TOKEN)"
    )
    add_speaking_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    fields = fields_of(
        args,
        (
            *PEER_FIELDS,
            *SPEAKING_FIELDS,
            "source",
            "fps",
            "codec",
            "x264_preset",
            "lookahead_s",
            "publish_whip",
            "publish_token",
        ),
    )
    if args.size:
        try:
            fields["width"], fields["height"] = parse_size(args.size)
        except ValueError as exc:
            print(f"avatar remote: {exc}", file=sys.stderr)
            return 2
    settings = load_settings(RemoteSettings, args, "remote", fields)
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
