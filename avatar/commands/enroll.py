"""``avatar enroll voice|face|persona``: build the person's profile (under the user data dir unless told otherwise)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from peer_local.profile.store import Profile, ProfileError
from peer_local.profile.voice_enroll import EnrollmentError


def register(subparsers: Any) -> None:
    enroll = subparsers.add_parser(
        "enroll",
        help="enrol the person: a reference voice, a face, a persona (the profile the clone is made of)",
        description="Each step checks what it records and says what to fix. Profiles live under the user data "
        "dir (--profile NAME) or in any folder (--profile ./path).",
    )
    steps = enroll.add_subparsers(dest="step", metavar="STEP", required=True)

    voice = steps.add_parser("voice", help="read a passage aloud (or give --from FILE --text TEXT)")
    voice.add_argument("--from", dest="source", type=Path, help="an audio/video file instead of the microphone")
    voice.add_argument("--text", help="the exact words of --from (unset: the passage shown)")
    voice.add_argument("--mic", help="microphone name or index (unset: the system default)")
    voice.add_argument("--seconds", type=float, default=25.0, help="recording length")

    face = steps.add_parser("face", help="capture a photo from the webcam (or --from IMAGE|VIDEO)")
    face.add_argument("--from", dest="source", type=Path, help="a photo or a video (a video also keeps a clip)")
    face.add_argument("--webcam", type=int, default=0, help="webcam index")

    persona = steps.add_parser("persona", help="write a commented persona.toml template, or --check an edited one")
    persona.add_argument("--check", action="store_true", help="validate the profile's persona.toml")
    persona.add_argument("--force", action="store_true", help="overwrite an existing persona.toml with the template")

    check = steps.add_parser("check", help="validate every file of the profile and show its manifest")
    for parser in (voice, face, persona, check):
        parser.add_argument("--profile", default="default", help="profile name or folder")
        parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        profile = Profile.open(args.profile, create=args.step != "check")
        return {"voice": enroll_voice, "face": enroll_face, "persona": enroll_persona, "check": check}[args.step](
            args, profile
        )
    except (EnrollmentError, ProfileError) as exc:
        print(f"avatar enroll {args.step}: {exc}", file=sys.stderr)
        return 1


def enroll_voice(args: argparse.Namespace, profile: Profile) -> int:
    from peer_local.profile import voice_enroll

    text = args.text or voice_enroll.PASSAGE
    if args.source is not None:
        if args.text is None:
            print("avatar enroll voice: --from needs --text with the file's exact words", file=sys.stderr)
            return 2
        from peer_local.audio_input.base import AudioInputError
        from peer_local.audio_input.file_source import read_file

        try:
            samples = read_file(args.source)
        except AudioInputError as exc:
            raise EnrollmentError(str(exc)) from exc
    else:
        print("Read this aloud, at your normal pace, when the meter starts moving:\n")
        print(f"  {text}\n")
        meter = voice_enroll.record(args.mic, args.seconds, lambda bar: print(f"\r  {bar}", end="", flush=True))
        samples = asyncio.run(meter)
        print()
    report = voice_enroll.enroll_voice(profile, samples, text)
    print(
        f"voice enrolled in {profile.path}: {report.kept_s} s kept, {report.speech_s} s of speech, "
        f"{report.snr_db} dB above the background, ASR word error {report.wer:.0%}"
    )
    return 0


def enroll_face(args: argparse.Namespace, profile: Profile) -> int:
    from peer_local.profile import face_enroll

    source: Path | None = args.source
    if source is not None and source.suffix.lower() in {".mp4", ".mov", ".mkv", ".webm", ".avi"}:
        report = face_enroll.enroll_face_video(profile, source)
        print(f"face enrolled in {profile.path}: face.png and a {report.clip_s} s clip from {report.clip_start_s} s")
        return 0
    if source is not None:
        image, where = face_enroll.read_image(source), str(source)
    else:
        image, where = face_enroll.capture_webcam(args.webcam), f"webcam {args.webcam}"
    report = face_enroll.enroll_face_image(profile, image, where)
    print(f"face enrolled in {profile.path}: {report.face_px} px face, brightness {report.brightness}")
    return 0


def enroll_persona(args: argparse.Namespace, profile: Profile) -> int:
    from media.profile.persona import TEMPLATE, PersonaError, load_persona

    path = profile.file("persona.toml")
    if args.check:
        try:
            persona = load_persona(path)
        except PersonaError as exc:
            raise ProfileError(str(exc)) from exc
        profile.write_manifest()
        print(f"{path}: ok ({persona.name}; {len(persona.facts)} facts, {len(persona.deflect)} topics to deflect)")
        return 0
    if path.exists() and not args.force:
        print(f"{path} exists; edit it and run `avatar enroll persona --check` (or --force to start over)")
        return 0
    path.write_text(TEMPLATE, encoding="utf-8")
    print(f"wrote {path}: edit it, then run `avatar enroll persona --check --profile {args.profile}`")
    return 0


def check(args: argparse.Namespace, profile: Profile) -> int:
    for entry in profile.load():
        print(f"{entry.name:<13} {entry.bytes:>10} bytes  sha256 {entry.sha256[:16]}…")
    print(f"profile {profile.path}: ok")
    return 0
