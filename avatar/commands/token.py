"""``avatar token``: issue a room-scoped, expiring token signed with the server's secret."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from signaling.messages import ROOM_PATTERN
from signaling.tokens import DEFAULT_LEEWAY_S, ROLES, issue_token, parse_ttl


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "token",
        help="issue a signed token for one room and role (secret: AVATAR_TOKEN, as the server's)",
        description="Print a token (HS256 JWT) that admits ROLE into ROOM until it expires. Peers holding the "
        "secret mint their own; this is for handing a viewer or a laptop access without the secret. The server "
        f"accepts a token up to its --token-leeway ({DEFAULT_LEEWAY_S:g} s unless told otherwise) after it expires, for clock "
        "differences. Tokens cannot be revoked: only a new secret ends them early.",
    )
    parser.add_argument("--room", required=True, help="the room the token admits to")
    parser.add_argument("--role", required=True, choices=ROLES, help="the role it admits as")
    parser.add_argument(
        "--ttl",
        default="12h",
        help="lifetime: seconds or a number with s/m/h/d; the server adds its leeway "
        f"({DEFAULT_LEEWAY_S:g} s unless told otherwise)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    secret = os.environ.get("AVATAR_TOKEN", "")
    if not secret:
        print("avatar token: set AVATAR_TOKEN to the server's secret first", file=sys.stderr)
        return 2
    if not ROOM_PATTERN.match(args.room):
        print("avatar token: room must be 1-64 characters of letters, digits, '_', '.', '-'", file=sys.stderr)
        return 2
    try:
        ttl = parse_ttl(args.ttl)
    except ValueError as exc:
        print(f"avatar token: {exc}", file=sys.stderr)
        return 2
    print(issue_token(secret, args.room, args.role, ttl))
    return 0
