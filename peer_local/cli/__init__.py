"""The ``avatar`` command line: one console script, one subcommand per job."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from peer_local.cli import (
    bench_command,
    box_command,
    control_command,
    demo_command,
    deploy_command,
    devices_command,
    enroll_command,
    local_command,
    log_command,
    remote_command,
    signaling_command,
    speak_commands,
    token_command,
    transcribe_command,
)

COMMANDS = (
    demo_command,
    signaling_command,
    remote_command,
    local_command,
    control_command,
    transcribe_command,
    speak_commands,
    devices_command,
    bench_command,
    box_command,
    deploy_command,
    token_command,
    enroll_command,
    log_command,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avatar",
        description="avatar: a real-time digital clone for video calls. "
        "Settings come from flags, then AVATAR_* environment variables, then --config FILE.",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log verbosity (default INFO)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s.%(msecs)03d %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    for noisy in ("aioice", "aiortc", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, getattr(logging, level)))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``avatar`` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
