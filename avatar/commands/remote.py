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
from media.settings import ROOM_NAME, parse_size
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
        description="Join a room as the remote (avatar) peer and answer every subscriber with one shared stream. "
        "With several --room flags, each room gets its own clone (persona, voice, face, conversation, take-over "
        "state) and all of them share the LLM, the TTS and the face models; the token must admit every room "
        "(the signaling's shared token, as `avatar box` passes it).",
    )
    add_peer_arguments(parser, several_rooms=True)
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
    add_speaking_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    fields = fields_of(args, (*PEER_FIELDS, *SPEAKING_FIELDS, "source", "fps", "codec", "x264_preset", "lookahead_s"))
    rooms: list[str] = args.rooms or []
    fields["room"] = rooms[0] if rooms else None
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
    if problem := rooms_problem(rooms):
        print(f"avatar remote: {problem}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_main(settings, rooms))
    except (SignalingAuthError, LlmError, TtsError, FaceError) as exc:
        print(f"avatar remote: {exc}", file=sys.stderr)
        return 1
    return 0


def rooms_problem(rooms: list[str]) -> str | None:
    """Why these rooms cannot be served together (each name is checked as --room checks one), or None."""
    if len(set(rooms)) != len(rooms):
        return f"a room is named twice: {' '.join(rooms)}"
    bad = [room for room in rooms if not ROOM_NAME.match(room)]
    return f"invalid room name(s): {' '.join(bad)}" if bad else None


async def _main(settings: RemoteSettings, rooms: list[str]) -> None:
    stop = asyncio.Event()
    install_stop_signals(stop)
    if len(rooms) > 1:
        from peer_remote.rooms import RoomHost

        await RoomHost(settings, rooms).run(stop)
        return
    from peer_remote.service import RemotePeer

    await RemotePeer(settings).run(stop)
