"""``avatar remote``: the avatar peer."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from avatar.options import add_settings_flags, load_settings, token_problem
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
    parser.add_argument(
        "--room",
        action="append",
        dest="rooms",
        metavar="ROOM",
        help=RemoteSettings.model_fields["room"].description,  # repeatable: see the description above
    ).shown_default = RemoteSettings.model_fields["room"].default  # type: ignore[attr-defined]
    size = parser.add_argument("--size", help="video size WIDTHxHEIGHT (sets width and height)")
    width, height = (RemoteSettings.model_fields[side].default for side in ("width", "height"))
    size.shown_default = f"{width}x{height}"  # type: ignore[attr-defined]  # read by avatar.help_format
    add_settings_flags(parser, RemoteSettings, exclude=("width", "height", "room"))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    size: dict[str, int] = {}
    if args.size:
        try:
            size["width"], size["height"] = parse_size(args.size)
        except ValueError as exc:
            print(f"avatar remote: {exc}", file=sys.stderr)
            return 2
    rooms: list[str] = args.rooms or []
    settings = load_settings(RemoteSettings, args, "remote", {**size, **({"room": rooms[0]} if rooms else {})})
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
