"""``avatar box`` (the GPU container's entrypoint) and ``avatar fetch-models``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from avatar.options import add_settings_flags, load_settings, write_json
from peer_remote.box.settings import BoxSettings
from peer_remote.box.sidecar import SidecarError
from peer_remote.settings import SpeakingSettings
from signaling.server import install_stop_signals

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "box",
        help="run the GPU box: signaling, coturn, vLLM, Fish Speech and the avatar peer (the container entrypoint)",
        description="Fetch missing models, start signaling (GET /healthz reports each component), coturn, vLLM "
        "and Fish Speech, wait for their health endpoints, then run `avatar remote`. Crashed sidecars are "
        "restarted. Each flag is also an AVATAR_* variable and a key of the [box] table of --config.",
    )
    add_settings_flags(parser, BoxSettings)
    parser.set_defaults(func=run)

    fetch = subparsers.add_parser(
        "fetch-models",
        help="fetch MuseTalk's (and Fish Speech's) model files into the models directory",
        description="Idempotent: only missing files are downloaded (HF_TOKEN from the environment if needed).",
    )
    fetch.add_argument(
        "--models-dir", type=Path, default=BoxSettings.model_fields["models_dir"].default, help="target directory"
    )
    fetch.add_argument("--no-fish", action="store_true", help="only MuseTalk's files")
    fetch.set_defaults(func=run_fetch)

    smoke = subparsers.add_parser(
        "smoke",
        help="check each backend once on this machine: LLM first token, TTS first audio, face fps, GPU memory",
        description="Run on the GPU box (container/smoke passes the production backends): every check runs even "
        "when another fails; exit 1 if any failed.",
    )
    add_settings_flags(smoke, SpeakingSettings)
    smoke.add_argument("--frames", type=int, default=100, help="face frames to render")
    smoke.add_argument("--json", type=Path, metavar="PATH", help="write the results here")
    smoke.set_defaults(func=run_smoke)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(BoxSettings, args, "box")
    if settings is None:
        return 2
    from peer_remote.box.runner import Box

    try:
        box = Box(settings)
    except ValueError as exc:
        print(f"avatar box: {exc}", file=sys.stderr)
        return 2

    async def main() -> None:
        stop = asyncio.Event()
        install_stop_signals(stop)
        await box.run(stop)

    try:
        asyncio.run(main())
    except SidecarError as exc:
        print(f"avatar box: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"avatar box: {exc}", file=sys.stderr)
        return 1
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    from peer_remote.box.model_fetch import FISH_SPEECH_FILES, MUSETALK_FILES, fetch_models

    files = MUSETALK_FILES if args.no_fish else MUSETALK_FILES + FISH_SPEECH_FILES
    try:
        fetched = fetch_models(args.models_dir, files)
    except Exception as exc:  # network, auth, disk: all end the same way for the user
        print(f"avatar fetch-models: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"{len(fetched)} files fetched into {args.models_dir}; {len(files) - len(fetched)} were present")
    return 0


def run_smoke(args: argparse.Namespace) -> int:
    from peer_remote.box.smoke import run_smoke as smoke
    from peer_remote.box.smoke import smoke_lines

    settings = load_settings(SpeakingSettings, args, "remote")
    if settings is None:
        return 2
    result = asyncio.run(smoke(settings, args.frames))
    for line in smoke_lines(result):
        print(line)
    write_json(args.json, result)
    return 0 if result["ok"] else 1
