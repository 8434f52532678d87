"""The ``avatar`` command line (``avatar.main:main``, ``python -m avatar``): one console script, one subcommand per job.

Only the chosen subcommand's module is imported, so a machine that installed one role (the laptop's ``local``
extra, the box's ``remote``) runs its commands without the other role's packages, and starts faster.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

from avatar.help_format import AvatarArgumentParser


@dataclass(frozen=True)
class Subcommand:
    """Where a subcommand lives and what it needs installed; its module's ``register`` adds its parser."""

    module: str
    help: str
    extras: tuple[str, ...] = ()


SUBCOMMANDS: dict[str, Subcommand] = {
    "demo": Subcommand(
        "avatar.commands.demo",
        "run signaling, the avatar and the local peer together on this machine",
        ("local", "remote"),
    ),
    "signaling": Subcommand(
        "avatar.commands.signaling", "run the signaling server (rooms, auth, health, preview page)"
    ),
    "remote": Subcommand(
        "avatar.commands.remote", "run the avatar peer (streams audio+video to the local peer and viewers)", ("remote",)
    ),
    "local": Subcommand(
        "avatar.commands.local", "run the local peer (receives the avatar; records or feeds sinks)", ("local",)
    ),
    "control": Subcommand(
        "avatar.commands.control", "take over, hand back, mute, unmute or skip the running clone (or print its state)"
    ),
    "transcribe": Subcommand("avatar.commands.transcribe", "transcribe an audio file with the local ASR", ("local",)),
    "say": Subcommand("avatar.commands.speak", "speak TEXT with the configured TTS into a 48 kHz WAV", ("remote",)),
    "chat": Subcommand(
        "avatar.commands.speak", "a text REPL against the avatar's LLM and persona, with timings", ("remote",)
    ),
    "devices": Subcommand(
        "avatar.commands.devices",
        "list audio devices and virtual camera/microphone availability, with fixes",
        ("local",),
    ),
    "bench": Subcommand("avatar.commands.bench", "run a benchmark (prints a table, writes JSON)", ("local", "remote")),
    "box": Subcommand(
        "avatar.commands.box",
        "run the GPU box: signaling, coturn, vLLM, Fish Speech and the avatar peer (the container entrypoint)",
        ("remote",),
    ),
    "fetch-models": Subcommand(
        "avatar.commands.box", "fetch MuseTalk's (and Fish Speech's) model files into the models directory", ("remote",)
    ),
    "smoke": Subcommand(
        "avatar.commands.box",
        "check each backend once on this machine: LLM first token, TTS first audio, face fps, GPU memory",
        ("remote",),
    ),
    "deploy": Subcommand(
        "avatar.commands.deploy",
        "deploy the GPU box (peer_remote) to a cloud; `avatar deploy vast --help`",
        ("deploy",),
    ),
    "token": Subcommand(
        "avatar.commands.token", "issue a signed token for one room and role (secret: AVATAR_TOKEN, as the server's)"
    ),
    "enroll": Subcommand(
        "avatar.commands.enroll",
        "enrol the person: a reference voice, a face, a persona (the profile the clone is made of)",
        ("local",),
    ),
    "log": Subcommand("avatar.commands.log", "print a session log: what was heard, what the clone said, how fast"),
}


class MissingRoleError(Exception):
    """A subcommand's module needs a package of a role (extra) that is not installed here."""


def chosen_subcommand(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line (the first word that is one), if any."""
    for word in argv:
        if word in SUBCOMMANDS:
            return word
    return None


def load_subcommand(name: str) -> ModuleType:
    """Import a subcommand's module; a missing optional package names the extra that brings it."""
    command = SUBCOMMANDS[name]
    try:
        return importlib.import_module(command.module)
    except ModuleNotFoundError as error:
        if error.name is not None and error.name.split(".")[0] in {"avatar", "signaling", "media"}:
            raise
        extras = ",".join(command.extras) or "local"
        raise MissingRoleError(
            f"`avatar {name}` needs {error.name!r}, which is not installed: install the {extras!r} extra "
            f"(in a checkout: uv sync --extra {' --extra '.join(extras.split(','))}; "
            f'or: pip install "avatar[{extras}]")'
        ) from error


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser with the chosen subcommand's full flags; every other subcommand is listed by its help alone."""
    parser = AvatarArgumentParser(
        prog="avatar",
        description="avatar: a real-time digital clone for video calls. "
        "Settings come from flags, then AVATAR_* environment variables, then --config FILE.",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log verbosity",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = chosen_subcommand(argv)
    chosen_module = SUBCOMMANDS[chosen].module if chosen else None
    for name, command in SUBCOMMANDS.items():
        if command.module == chosen_module:
            if name == chosen:
                load_subcommand(name).register(subparsers)
            continue
        subparsers.add_parser(name, help=command.help, add_help=False)
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
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(words)
    except MissingRoleError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args = parser.parse_args(words)
    configure_logging(args.log_level)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
