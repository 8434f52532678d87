"""``avatar devices``: what this machine offers the clone, and how to fix what is missing."""

from __future__ import annotations

import argparse
import glob
import json
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "devices",
        help="list audio devices and virtual camera/microphone availability, with fixes",
        description="List input and output audio devices (marking virtual cables, null sinks and loopback/monitor "
        "inputs) and whether a virtual camera backend is available, with the fix for whatever is missing.",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON document instead of text")
    parser.set_defaults(func=run)


def probe_virtual_camera() -> tuple[bool, str]:
    """Whether a virtual camera can be opened, and what was found (or what to do)."""
    from peer_local.sinks.virtual_camera import install_hint

    if sys.platform.startswith("linux"):
        names = {p: Path(p).read_text().strip() for p in glob.glob("/sys/class/video4linux/video*/name")}
        loopback = [
            f"/dev/{Path(p).parent.name} ({n})"
            for p, n in names.items()
            if "loopback" in n.lower() or "dummy" in n.lower()
        ]
        if loopback:
            return True, "v4l2loopback: " + ", ".join(loopback)
        return False, f"no v4l2loopback device; {install_hint()}"
    try:
        import pyvirtualcam

        with pyvirtualcam.Camera(640, 360, 25) as camera:
            return True, f"{camera.backend}: {camera.device}"
    except (RuntimeError, ImportError) as exc:
        return False, f"{exc}; {install_hint()}"


def run(args: argparse.Namespace) -> int:
    from peer_local.audio_input.base import AudioInputError
    from peer_local.audio_input.devices import list_devices, resolve_loopback_device
    from peer_local.sinks.virtual_mic import default_mic_device, find_output_device

    try:
        devices = list_devices()
        audio_error = None
    except AudioInputError as exc:
        devices, audio_error = [], str(exc)
    camera_ok, camera_detail = probe_virtual_camera()
    mic_name = default_mic_device()
    try:  # a listed device, or the sound server's sink reached through the pulse device; nothing is created
        mic = find_output_device(mic_name, devices, create=False) if devices else None
    except AudioInputError:
        mic = None
    try:
        loopback, loopback_fix = (resolve_loopback_device(devices) if devices else None), None
    except AudioInputError as exc:
        loopback, loopback_fix = None, str(exc).split(". ")[0]
    if sys.platform == "win32":
        mic_fix = "install VB-Audio Virtual Cable; in the meeting app pick 'CABLE Output' as the microphone"
    else:
        mic_fix = (
            "pactl load-module module-null-sink sink_name=avatar_mic; in the meeting app pick "
            "'Monitor of avatar_mic' as the microphone (or run the local peer with PULSE_SINK=avatar_mic and --mic-out pulse)"
        )
    if args.json:
        document = {
            "audio_error": audio_error,
            "devices": [
                {**d.__dict__, "virtual_cable": d.looks_like_virtual_cable, "loopback": d.looks_like_loopback}
                for d in devices
            ],
            "virtual_microphone": {"default": mic_name, "found": mic is not None, "fix": None if mic else mic_fix},
            "virtual_camera": {"available": camera_ok, "detail": camera_detail},
            "meeting_audio": {
                "input": "loopback",
                "found": loopback is not None,
                "device": loopback.name if loopback else None,
                "fix": loopback_fix,
            },
        }
        print(json.dumps(document, indent=2))
        return 0
    if audio_error:
        print(f"audio: {audio_error}")
    for title, kind in (("Input devices", "in"), ("Output devices", "out")):
        print(f"{title}:")
        chosen = [d for d in devices if (d.max_input_channels if kind == "in" else d.max_output_channels) > 0]
        for d in chosen:
            marks = [
                m
                for m, on in (
                    ("virtual cable / null sink", d.looks_like_virtual_cable),
                    ("loopback", d.looks_like_loopback),
                )
                if on
            ]
            print(f"  {d.describe()}" + (f"  <- {', '.join(marks)}" if marks else ""))
        if not chosen:
            print("  (none)")
    print(f"Virtual microphone ({mic_name}): " + (f"found: {mic.describe()}" if mic else f"missing. Fix: {mic_fix}"))
    print(f"Virtual camera: {'available: ' if camera_ok else 'missing. '}{camera_detail}")
    print(
        "Meeting audio (--input loopback): "
        + (f"found: {loopback.name}" if loopback else f"missing. Fix: {loopback_fix or 'no audio devices'}")
    )
    return 0
