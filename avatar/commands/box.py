"""``avatar box`` (the GPU container's entrypoint) and ``avatar fetch-models``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from avatar.options import (
    SPEAKING_FIELDS,
    add_config_flag,
    add_speaking_arguments,
    fields_of,
    load_settings,
    write_json,
)
from peer_remote.box.settings import BoxSettings
from peer_remote.box.sidecar import SidecarError
from signaling.server import install_stop_signals

logger = logging.getLogger(__name__)

BOX_FIELDS = (
    "host",
    "port",
    "token",
    "models_dir",
    "fetch_models",
    "vllm",
    "fish",
    "turn",
    "llm_model",
    "llm_quantization",
    "llm_max_model_len",
    "llm_gpu_memory_utilization",
    "llm_kv_cache_bytes",
    "health_timeout_s",
    "public_ip",
)


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "box",
        help="run the GPU box: signaling, coturn, vLLM, Fish Speech and the avatar peer (the container entrypoint)",
        description="Fetch missing models, start signaling (GET /healthz reports each component), coturn, vLLM "
        "and Fish Speech, wait for their health endpoints, then run `avatar remote`. Crashed sidecars are "
        "restarted. Everything else comes from AVATAR_* variables or the [box] table of --config.",
    )
    parser.add_argument("--host", help="signaling bind address (default 0.0.0.0; needs AVATAR_TOKEN)")
    parser.add_argument("--port", type=int, help="signaling port (default 8765)")
    parser.add_argument(
        "--room",
        action="append",
        dest="rooms",
        metavar="ROOM",
        help="room the avatar joins (default demo); repeat it for one clone per room, sharing the models",
    )
    parser.add_argument("--token", help="signaling token (default: AVATAR_TOKEN; required)")
    parser.add_argument("--models-dir", type=Path, help="models volume (default /models)")
    parser.add_argument(
        "--fetch-models", action=argparse.BooleanOptionalAction, default=None, help="fetch missing model files"
    )
    parser.add_argument("--vllm", action=argparse.BooleanOptionalAction, default=None, help="run the vLLM sidecar")
    parser.add_argument("--fish", action=argparse.BooleanOptionalAction, default=None, help="run Fish Speech")
    parser.add_argument("--turn", action=argparse.BooleanOptionalAction, default=None, help="run coturn")
    parser.add_argument("--llm-model", help="model vLLM serves (default INSAIT-Institute/MamayLM-Gemma-2-9B-IT-v0.1)")
    parser.add_argument("--llm-quantization", help="vLLM --quantization (default bitsandbytes)")
    parser.add_argument("--llm-max-model-len", type=int, help="vLLM --max-model-len (default 4096)")
    parser.add_argument(
        "--llm-gpu-memory-utilization", type=float, help="vLLM's share of the GPU's memory (default 0.42)"
    )
    parser.add_argument(
        "--llm-kv-cache-bytes", type=int, help="vLLM --kv-cache-memory-bytes (default 2 GiB: 2147483648)"
    )
    parser.add_argument(
        "--health-timeout", type=float, dest="health_timeout_s", help="seconds each sidecar may take to load"
    )
    parser.add_argument("--public-ip", help="the box's public address (default: PUBLIC_IPADDR, set by Vast.ai)")
    add_config_flag(parser)
    parser.set_defaults(func=run)

    fetch = subparsers.add_parser(
        "fetch-models",
        help="fetch MuseTalk's (and Fish Speech's) model files into the models directory",
        description="Idempotent: only missing files are downloaded (HF_TOKEN from the environment if needed).",
    )
    fetch.add_argument("--models-dir", type=Path, default=Path("/models"), help="target directory (default /models)")
    fetch.add_argument("--no-fish", action="store_true", help="only MuseTalk's files")
    fetch.set_defaults(func=run_fetch)

    smoke = subparsers.add_parser(
        "smoke",
        help="check each backend once on this machine: LLM first token, TTS first audio, face fps, GPU memory",
        description="Run on the GPU box (container/smoke passes the production backends): every check runs even "
        "when another fails; exit 1 if any failed.",
    )
    add_speaking_arguments(smoke)
    smoke.add_argument("--frames", type=int, default=100, help="face frames to render (default 100)")
    smoke.add_argument("--json", type=Path, metavar="PATH", help="write the results here")
    add_config_flag(smoke)
    smoke.set_defaults(func=run_smoke)


def run(args: argparse.Namespace) -> int:
    fields = fields_of(args, BOX_FIELDS)
    if args.rooms:
        fields["room"], fields["rooms"] = args.rooms[0], args.rooms
    settings = load_settings(BoxSettings, args, "box", fields)
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
    from peer_remote.settings import SpeakingSettings

    settings = load_settings(SpeakingSettings, args, "remote", fields_of(args, SPEAKING_FIELDS))
    if settings is None:
        return 2
    result = asyncio.run(smoke(settings, args.frames))
    for line in smoke_lines(result):
        print(line)
    write_json(args.json, result)
    return 0 if result["ok"] else 1
