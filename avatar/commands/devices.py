"""``avatar devices``: what this machine offers the clone, and how to fix what is missing; ``--check`` opens what
a call will use (never a camera a running call holds) and exits non-zero when something required is missing."""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from peer_local.sinks.camera_lock import CameraLock

CHECK_LISTEN_S = 3.0  # how long --check waits for the meeting audio's first chunk


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "devices",
        help="list audio devices and virtual camera/microphone availability, with fixes",
        description="List input and output audio devices (marking virtual cables, null sinks and loopback/monitor "
        "inputs) and whether a virtual camera backend is available, with the fix for whatever is missing. "
        "--check opens what a call uses and exits 1 if something is missing.",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON document instead of text")
    parser.add_argument(
        "--check",
        action="store_true",
        help="before a call: open the meeting audio, the virtual microphone and the camera as avatar local will "
        "(a camera a running call holds is not touched); exit 1 if any is missing",
    )
    parser.set_defaults(func=run)


@dataclass
class CheckItem:
    """One thing a call needs: whether it is ready, what was found, and the fix when it is not."""

    ok: bool
    detail: str
    fix: str | None = None


def probe_virtual_camera(
    camera_factory: Any = None, platform: str | None = None, lock: CameraLock | None = None
) -> tuple[bool, str]:
    """Whether a virtual camera can be fed, and what was found (or what to do). A camera that a running call
    holds (its lock file) is reported as in use without being opened."""
    from peer_local.sinks.virtual_camera import BUSY_FIX, camera_error, install_hint

    platform = platform or sys.platform
    holder = (lock or CameraLock()).holder()
    if holder is not None:
        return False, f"in use by {holder.describe()}; to fix: {BUSY_FIX}"
    if platform.startswith("linux"):
        names = {p: Path(p).read_text().strip() for p in glob.glob("/sys/class/video4linux/video*/name")}
        loopback = [
            f"/dev/{Path(p).parent.name} ({n})"
            for p, n in names.items()
            if "loopback" in n.lower() or "dummy" in n.lower()
        ]
        if loopback:
            return True, "v4l2loopback: " + ", ".join(loopback) + ", not held by another avatar"
        return False, f"no v4l2loopback device; {install_hint()}"
    try:
        if camera_factory is None:
            import pyvirtualcam

            camera_factory = pyvirtualcam.Camera
        camera = camera_factory(640, 360, 25)
        try:
            return True, f"{camera.backend}: {camera.device}, free"
        finally:
            camera.close()
    except ImportError as exc:
        return False, f"{exc}; {install_hint()}"
    except RuntimeError as exc:
        return False, str(camera_error(exc))


def check_meeting_audio() -> CheckItem:
    """Open the meeting audio as ``--input loopback`` does and wait for its first chunk."""
    from peer_local.audio_input.base import AudioInputError
    from peer_local.audio_input.open import open_loopback

    async def first_chunk() -> str:
        source = open_loopback()
        try:
            async with asyncio.timeout(CHECK_LISTEN_S):
                async for _ in source.chunks():
                    break
        finally:
            await source.close()
        current = getattr(source, "current", None)
        return current.describe() if current is not None else source.name

    try:
        return CheckItem(True, asyncio.run(first_chunk()))
    except (AudioInputError, TimeoutError) as exc:
        message = str(exc) or f"no audio within {CHECK_LISTEN_S:.0f} s"
        return CheckItem(False, "missing", message)


def check_virtual_microphone(mic_name: str, devices: list[Any]) -> CheckItem:
    """Open the virtual microphone as ``avatar local`` does; report its host API, rate and measured latency."""
    from peer_local.audio_input.base import AudioInputError
    from peer_local.sinks.virtual_mic import VirtualMicSink, find_output_devices

    try:
        found = find_output_devices(mic_name, devices, create=False)
        sink = VirtualMicSink(found[0], fallbacks=found[1:])
        sink.start()
    except AudioInputError as exc:
        return CheckItem(False, "missing", str(exc).split(". Output devices:")[0])
    try:
        return CheckItem(True, sink.describe())
    finally:
        asyncio.run(sink.close())


def meeting_audio_report(devices: list[Any]) -> dict[str, Any]:
    """The meeting audio ``--input loopback`` will use, without opening it."""
    from peer_local.audio_input.base import AudioInputError
    from peer_local.audio_input.devices import resolve_loopback_device
    from peer_local.audio_input.meeting_audio import SoundCardUnavailableError, meeting_audio_choices

    report: dict[str, Any] = {"input": "loopback", "found": False, "device": None, "kind": None, "fix": None}
    try:
        choice = meeting_audio_choices()[0]
        report.update(found=True, device=choice.endpoint.name, kind=choice.kind)
    except SoundCardUnavailableError as unavailable:
        try:
            device = resolve_loopback_device(devices) if devices else None
        except AudioInputError as exc:
            device, report["fix"] = None, f"{unavailable}; {str(exc).split('. ')[0]}"
        if device is not None:
            report.update(found=True, device=device.name, kind="listed input")
    except AudioInputError as exc:
        report["fix"] = str(exc)
    return report


def run(args: argparse.Namespace) -> int:
    from peer_local.audio_input.base import AudioInputError
    from peer_local.audio_input.devices import list_devices
    from peer_local.sinks.virtual_mic import default_mic_device, find_output_device

    try:
        devices = list_devices()
        audio_error = None
    except AudioInputError as exc:
        devices, audio_error = [], str(exc)
    mic_name = default_mic_device()
    if sys.platform == "win32":
        mic_fix = "install VB-Audio Virtual Cable; in the meeting app pick 'CABLE Output' as the microphone"
    else:
        mic_fix = (
            "pactl load-module module-null-sink sink_name=avatar_mic; in the meeting app pick "
            "'Monitor of avatar_mic' as the microphone (or run the local peer with PULSE_SINK=avatar_mic and --mic-out pulse)"
        )
    if args.check:
        return run_check(args, devices, audio_error, mic_name, mic_fix)
    camera_ok, camera_detail = probe_virtual_camera()
    try:  # a listed device, or the sound server's sink reached through the pulse device; nothing is created
        mic = find_output_device(mic_name, devices, create=False) if devices else None
    except AudioInputError:
        mic = None
    meeting = meeting_audio_report(devices)
    if args.json:
        document = {
            "audio_error": audio_error,
            "devices": [
                {**d.__dict__, "virtual_cable": d.looks_like_virtual_cable, "loopback": d.looks_like_loopback}
                for d in devices
            ],
            "virtual_microphone": {"default": mic_name, "found": mic is not None, "fix": None if mic else mic_fix},
            "virtual_camera": {"available": camera_ok, "detail": camera_detail},
            "meeting_audio": meeting,
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
        + (
            f"found: {meeting['device']} ({meeting['kind']})"
            if meeting["found"]
            else f"missing. Fix: {meeting['fix'] or 'no audio devices'}"
        )
    )
    return 0


def run_check(
    args: argparse.Namespace, devices: list[Any], audio_error: str | None, mic_name: str, mic_fix: str
) -> int:
    camera_ok, camera_detail = probe_virtual_camera()
    items = {
        "meeting_audio": check_meeting_audio(),
        "virtual_microphone": (
            check_virtual_microphone(mic_name, devices)
            if devices
            else CheckItem(False, "missing", audio_error or "no audio devices")
        ),
        "virtual_camera": CheckItem(camera_ok, camera_detail, None if camera_ok else camera_detail),
    }
    if not items["virtual_microphone"].ok:
        items["virtual_microphone"].fix = f"{items['virtual_microphone'].fix}; {mic_fix}"
    ready = all(item.ok for item in items.values())
    if args.json:
        print(json.dumps({"ready": ready, **{name: asdict(item) for name, item in items.items()}}, indent=2))
        return 0 if ready else 1
    titles = {
        "meeting_audio": "Meeting audio (--input loopback)",
        "virtual_microphone": f"Virtual microphone ({mic_name})",
        "virtual_camera": "Virtual camera",
    }
    for name, item in items.items():
        if item.ok:
            print(f"[ok]      {titles[name]}: {item.detail}")
        elif name == "virtual_camera":
            print(f"[MISSING] {titles[name]}: {item.detail}")
        else:
            print(f"[MISSING] {titles[name]}. Fix: {item.fix}")
    missing = sum(not item.ok for item in items.values())
    print("Ready for a call." if ready else f"{missing} thing(s) missing: fix them before a call.")
    return 0 if ready else 1
