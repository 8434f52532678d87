"""A profile: one folder with ``voice.wav`` + ``voice.txt``, ``face.png`` and/or ``face.mp4``, ``persona.toml``
and ``manifest.json`` (content hashes). Every file is validated when the profile is loaded."""

from __future__ import annotations

import hashlib
import json
import re
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from media.profile.persona import PersonaError, load_persona
from media.protocol import PROFILE_FILE_NAMES, ProfileFile

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MANIFEST = "manifest.json"


class ProfileError(ValueError):
    """A profile or one of its files is unusable; the message names the file and the problem."""


def profiles_root() -> Path:
    return platformdirs.user_data_path("avatar") / "profiles"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_voice_wav(path: Path) -> None:
    try:
        with wave.open(str(path), "rb") as wav:
            rate, width, frames = wav.getframerate(), wav.getsampwidth(), wav.getnframes()
    except (wave.Error, EOFError) as exc:
        raise ProfileError(f"{path}: not a WAV file: {exc}") from exc
    seconds = frames / rate if rate else 0.0
    if width != 2 or not 16_000 <= rate <= 48_000:
        raise ProfileError(f"{path}: must be 16-bit PCM at 16-48 kHz (is {8 * width}-bit at {rate} Hz)")
    if not 3.0 <= seconds <= 60.0:
        raise ProfileError(f"{path}: {seconds:.1f} s long; a reference clip is 3-60 s (enrol it again)")


def check_voice_text(path: Path) -> None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{path}: not UTF-8 text") from exc
    if not text or len(text) > 4000:
        raise ProfileError(f"{path}: must hold the clip's exact transcript (1-4000 characters)")


def check_face_png(path: Path) -> None:
    from peer_local.profile.face_enroll import check_face_image, read_image

    check_face_image(read_image(path), str(path))


def check_face_mp4(path: Path) -> None:
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            frames = sum(1 for _ in container.decode(stream))
    except (av.error.FFmpegError, IndexError) as exc:
        raise ProfileError(f"{path}: not a readable video: {exc}") from exc
    if frames < 10:
        raise ProfileError(f"{path}: only {frames} frames; enrol the face clip again")


def check_persona(path: Path) -> None:
    try:
        load_persona(path)
    except PersonaError as exc:
        raise ProfileError(str(exc)) from exc


CHECKS = {
    "voice.wav": check_voice_wav,
    "voice.txt": check_voice_text,
    "face.png": check_face_png,
    "face.mp4": check_face_mp4,
    "persona.toml": check_persona,
}


@dataclass
class Profile:
    name: str
    path: Path

    @classmethod
    def open(cls, name: str, root: Path | None = None, create: bool = False) -> Profile:
        """A profile by name (under ``root``, default the user data dir) or by folder path."""
        candidate = Path(name)
        if candidate.is_absolute() or name.startswith((".", "~")) or "/" in name or "\\" in name:
            path = candidate.expanduser()
            name = path.name
        elif NAME_PATTERN.match(name):
            path = (root or profiles_root()) / name
        else:
            raise ProfileError(f"profile name {name!r}: use letters, digits, '_', '.', '-' (or give a folder path)")
        if create:
            path.mkdir(parents=True, exist_ok=True)
        elif not path.is_dir():
            raise ProfileError(f"no profile at {path} (create one with: avatar enroll voice|face|persona)")
        return cls(name, path)

    def file(self, name: str) -> Path:
        return self.path / name

    def present(self) -> list[str]:
        return [name for name in PROFILE_FILE_NAMES if self.file(name).is_file()]

    def validate(self) -> list[str]:
        """Check every file present (raises :class:`ProfileError` on the first problem); returns the names."""
        present = self.present()
        if not present:
            raise ProfileError(f"profile {self.path} is empty: enrol a voice, a face or a persona first")
        if ("voice.wav" in present) != ("voice.txt" in present):
            missing = "voice.txt" if "voice.wav" in present else "voice.wav"
            raise ProfileError(f"{self.file(missing)}: missing (voice.wav and its transcript voice.txt go together)")
        for name in present:
            CHECKS[name](self.file(name))
        return present

    def files(self) -> list[ProfileFile]:
        return [
            ProfileFile(name=name, sha256=sha256_of(self.file(name)), bytes=self.file(name).stat().st_size)  # type: ignore[arg-type]
            for name in self.present()
        ]

    def write_manifest(self) -> dict[str, Any]:
        manifest = {
            "version": 1,
            "profile": self.name,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "files": {f.name: {"sha256": f.sha256, "bytes": f.bytes} for f in self.files()},
        }
        self.file(MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        return manifest

    def load(self) -> list[ProfileFile]:
        """Validate every file and return the manifest entries (the manifest is refreshed if files changed)."""
        self.validate()
        files = self.files()
        try:
            recorded = json.loads(self.file(MANIFEST).read_text(encoding="utf-8"))["files"]
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            recorded = None
        if recorded != {f.name: {"sha256": f.sha256, "bytes": f.bytes} for f in files}:
            self.write_manifest()
        return files
