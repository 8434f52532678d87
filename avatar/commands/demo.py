"""``avatar demo``: the whole system on this machine with the embedded CPU defaults."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING, Any

from avatar.demo import Demo, DemoSettings
from avatar.options import add_settings_flags, explicit_devices, load_settings

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
    add_settings_flags(parser, DemoSettings)
    parser.set_defaults(func=run)


def run(
    args: argparse.Namespace, wrap_producer: ProducerWrapper | None = None, probe: SpeechOnsetProbe | None = None
) -> int:
    """Run the demo as the flags say; a benchmark observes it through ``wrap_producer`` and ``probe`` (see
    :class:`avatar.demo.Demo`)."""
    settings = load_settings(DemoSettings, args, "demo")
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
