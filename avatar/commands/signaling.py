"""``avatar signaling``: run the signaling server."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from avatar.options import add_config_flag, load_settings
from signaling.server import InsecureBindError, resolve_token, serve_until_stopped
from signaling.settings import SignalingSettings


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "signaling",
        help="run the signaling server (rooms, auth, health, preview page)",
        description="Run the aiohttp signaling server. Peers join rooms over /ws; GET /healthz and /metrics "
        "report state. Without a token it generates one (loopback only) and prints a join URL.",
    )
    parser.add_argument("--host", help="address to bind (default 127.0.0.1; anything else requires a token)")
    parser.add_argument("--port", type=int, help="TCP port (default 8080; 0 picks a free one)")
    parser.add_argument("--token", help="shared secret clients must present (default: AVATAR_TOKEN, else generated)")
    parser.add_argument(
        "--heartbeat",
        type=float,
        dest="heartbeat_s",
        help="WebSocket ping interval in seconds (default 10; dead sockets drop within 1.5x)",
    )
    parser.add_argument("--max-message-bytes", type=int, help="largest accepted message (default 65536)")
    parser.add_argument(
        "--max-connections-per-address", type=int, help="concurrent sockets per client address (default 32)"
    )
    parser.add_argument("--max-viewers-per-room", type=int, help="browser viewers per room (default 16)")
    parser.add_argument("--public-url", help="base URL to print in join links, e.g. https://host:port")
    parser.add_argument(
        "--ice-server",
        action="append",
        dest="ice_servers",
        metavar="URL",
        help="STUN/TURN URL advertised to peers in welcome, repeatable (e.g. turn:HOST:3478?transport=udp)",
    )
    parser.add_argument(
        "--turn-secret",
        help="coturn static-auth-secret: peers get short-lived TURN credentials (or AVATAR_TURN_SECRET)",
    )
    parser.add_argument(
        "--turn-ttl", type=int, dest="turn_ttl_s", help="TURN credential lifetime in seconds (default 43200)"
    )
    parser.add_argument(
        "--token-leeway",
        type=float,
        dest="token_leeway_s",
        metavar="S",
        help="seconds a signed token is still accepted after it expires (clock differences; default 5)",
    )
    parser.add_argument(
        "--accept-shared-token",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="accept the plain secret as a token (default: only on loopback; elsewhere peers present signed "
        "room tokens, which peers holding the secret mint themselves; `avatar token` issues one)",
    )
    add_config_flag(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    fields = {
        k: getattr(args, k)
        for k in (
            "host",
            "port",
            "token",
            "heartbeat_s",
            "max_message_bytes",
            "max_connections_per_address",
            "max_viewers_per_room",
            "public_url",
            "ice_servers",
            "turn_secret",
            "turn_ttl_s",
            "token_leeway_s",
            "accept_shared_token",
        )
    }
    settings = load_settings(SignalingSettings, args, "signaling", fields)
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
