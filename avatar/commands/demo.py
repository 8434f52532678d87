"""``avatar demo``: the whole system on this machine with the embedded CPU defaults."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avatar.options import (
    IN_CHARGE_FIELDS,
    add_config_flag,
    add_in_charge_arguments,
    explicit_devices,
    load_settings,
)

if TYPE_CHECKING:
    from peer_local.turn_latency import SpeechOnsetProbe
    from peer_remote.service import ProducerWrapper


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="run signaling, the avatar and the local peer together on this machine",
        description="Start the signaling server on 127.0.0.1 with a fresh token, the avatar (remote peer) and the "
        "local peer, then print the preview page's join URL. Ctrl-C stops everything.",
    )
    parser.add_argument(
        "--port", type=int, help="signaling/preview port on 127.0.0.1 (default 8080; 0 picks a free one)"
    )
    parser.add_argument(
        "--input", help="what the clone listens to: mic (default), mic:NAME|INDEX, loopback, a FILE, or none"
    )
    parser.add_argument(
        "--turn-detector",
        choices=["silence", "smart-turn"],
        help="what ends a turn: silence (the default) or smart-turn (Smart Turn v3 judges each pause)",
    )
    parser.add_argument("--smart-turn-model", type=Path, metavar="ONNX", help="the Smart Turn v3 ONNX file")
    parser.add_argument("--face-image", type=Path, help="photo of the person (default: the bundled astronaut portrait)")
    parser.add_argument("--persona", help="system prompt: who the person is and how they speak")
    parser.add_argument(
        "--camera",
        choices=["virtual", "none"],
        help="feed a virtual webcam (default virtual, skipped with a hint if none is installed)",
    )
    parser.add_argument(
        "--mic-out",
        help="virtual microphone device or none (default: VB-Cable on Windows, the avatar_mic null sink on Linux)",
    )
    parser.add_argument(
        "--metrics-json",
        type=Path,
        metavar="PATH",
        help="write per-turn metrics and end-of-speech -> first-audio figures here on exit",
    )
    parser.add_argument("--record", type=Path, metavar="OUT.mp4", help="record what the local peer receives")
    parser.add_argument("--duration", type=float, dest="duration_s", metavar="S", help="stop after S seconds of media")
    parser.add_argument(
        "--no-browser", action="store_false", dest="open_browser", default=None, help="do not open the preview page"
    )
    add_in_charge_arguments(parser)
    add_config_flag(parser)
    parser.set_defaults(func=run)


def run(
    args: argparse.Namespace, wrap_producer: ProducerWrapper | None = None, probe: SpeechOnsetProbe | None = None
) -> int:
    """Run the demo as the flags say; a benchmark observes it through ``wrap_producer`` and ``probe`` (see
    :class:`avatar.demo.Demo`)."""
    from avatar.demo import Demo, DemoSettings

    names = (
        "port",
        "input",
        "turn_detector",
        "smart_turn_model",
        "face_image",
        "persona",
        "camera",
        "mic_out",
        "metrics_json",
        "record",
        "duration_s",
        "open_browser",
        *IN_CHARGE_FIELDS,
    )
    fields = {k: getattr(args, k) for k in names}
    settings = load_settings(DemoSettings, args, "demo", fields)
    if settings is None:
        return 2
    from peer_local.asr import AsrError
    from peer_local.audio_input import AudioInputError
    from peer_local.profile.store import ProfileError
    from peer_local.sinks.virtual_camera import VirtualCameraError
    from peer_local.smart_turn import SmartTurnModelError

    try:
        asyncio.run(Demo(settings, explicit_devices(args), wrap_producer, probe).run())
    except (AudioInputError, AsrError, VirtualCameraError, ProfileError, SmartTurnModelError) as exc:
        print(f"avatar demo: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"avatar demo: {exc.strerror or exc} (is port {settings.port} in use? try --port 0)", file=sys.stderr)
        return 1
    return 0
