"""``avatar signaling``: run the signaling server."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from avatar.options import add_settings_flags, load_settings
from signaling.server import InsecureBindError, resolve_token, serve_until_stopped
from signaling.settings import SignalingSettings


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "signaling",
        help="run the signaling server (rooms, auth, health, preview page)",
        description="Run the aiohttp signaling server. Peers join rooms over /ws; GET /healthz and /metrics "
        "report state. Without a token it generates one (loopback only) and prints a join URL.",
    )
    add_settings_flags(parser, SignalingSettings)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(SignalingSettings, args, "signaling")
    if settings is None:
        return 2
    try:
        token, generated = resolve_token(settings)
    except InsecureBindError as exc:
        print(f"avatar signaling: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve_until_stopped(settings, token, announce=generated))
    except OSError as exc:
        print(
            f"avatar signaling: cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 1
    return 0
