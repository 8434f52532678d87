"""Helpers shared by the subcommands: the ``--config`` flag and settings errors."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from media.settings import PeerSettings
from signaling.settings import AvatarSettings, ConfigFileError

SettingsT = TypeVar("SettingsT", bound=AvatarSettings)


def add_config_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, metavar="FILE", help="TOML settings file (top-level keys and a [section] per command)"
    )


def load_settings(
    cls: type[SettingsT], args: argparse.Namespace, section: str, fields: dict[str, Any]
) -> SettingsT | None:
    """Load settings or print a clear error to stderr and return None."""
    try:
        return cls.load(fields, getattr(args, "config", None), section)
    except ConfigFileError as exc:
        print(f"avatar: {exc}", file=sys.stderr)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        print(f"avatar: invalid settings: {problems}", file=sys.stderr)
    return None


def add_peer_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags every peer takes: signaling URL, room, token, ICE."""
    parser.add_argument("--signaling", metavar="URL", help="signaling server base URL (default http://127.0.0.1:8080)")
    parser.add_argument("--room", help="room to join (default demo)")
    parser.add_argument("--token", help="signaling token (default: AVATAR_TOKEN)")
    parser.add_argument(
        "--ice-server",
        action="append",
        dest="ice_servers",
        metavar="URL",
        help="STUN/TURN server, repeatable: stun:HOST:PORT or turn://USER:PASS@HOST:PORT?transport=udp (default: none)",
    )
    parser.add_argument(
        "--ice-host",
        action="append",
        dest="ice_host_addresses",
        metavar="ADDR",
        help="gather ICE host candidates only on this address, repeatable (e.g. 127.0.0.1 for same-machine runs)",
    )
    add_config_flag(parser)


def token_problem(settings: PeerSettings, command: str) -> bool:
    """Print why a peer cannot start without a token; True if there is a problem."""
    try:
        settings.token_value()
    except ValueError as exc:
        print(f"avatar {command}: {exc}", file=sys.stderr)
        return True
    return False


PEER_FIELDS = ("signaling", "room", "token", "ice_servers", "ice_host_addresses")


def fields_of(args: argparse.Namespace, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(args, name, None) for name in names}
