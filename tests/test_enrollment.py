"""Enrolment from files: generated speech and the bundled portrait succeed; bad inputs are refused with the
right reason; a broken profile names the file and the problem."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from avatar.main import main as avatar_main
from benchmarks.harness.speech import espeak, read_wav, write_wav
from media.profile.face_geometry import default_portrait
from peer_local.profile.face_enroll import write_clip
from peer_local.profile.store import Profile, ProfileError
from peer_local.profile.voice_enroll import PASSAGE

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def passage_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The passage spoken by espeak-ng, with a second of silence either side."""
    directory = tmp_path_factory.mktemp("voice")
    spoken, rate = read_wav(espeak(PASSAGE, directory / "spoken.wav"))
    padded = np.concatenate([np.zeros(rate, np.int16), spoken, np.zeros(rate, np.int16)])
    return write_wav(directory / "passage.wav", padded, rate)


def variant(source: Path, target: Path, change) -> Path:  # type: ignore[no-untyped-def]
    samples, rate = read_wav(source)
    return write_wav(target, np.clip(change(samples.astype(np.float64), rate), -32768, 32767), rate)


def enroll(*args: str) -> int:
    return avatar_main(["enroll", *args])


def test_voice_from_a_file_is_checked_trimmed_and_kept(
    passage_wav: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = tmp_path / "me"
    assert enroll("voice", "--profile", str(profile), "--from", str(passage_wav), "--text", PASSAGE) == 0
    out = capsys.readouterr().out
    assert "voice enrolled" in out and "ASR word error" in out
    kept, rate = read_wav(profile / "voice.wav")
    original, original_rate = read_wav(passage_wav)
    assert rate == 16_000 and kept.size / rate < original.size / original_rate - 1.2  # silence trimmed
    assert (profile / "voice.txt").read_text().strip() == PASSAGE
    manifest = json.loads((profile / "manifest.json").read_text())
    assert set(manifest["files"]) == {"voice.wav", "voice.txt"}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda s, r: s * 0, "too little speech"),
        (lambda s, r: s * 40, "clipping"),
        (lambda s, r: s + np.random.default_rng(1).normal(0, 2500, s.size), "too noisy"),
    ],
    ids=["silence", "clipping", "noise"],
)
def test_bad_voice_recordings_are_refused_with_the_reason(
    passage_wav: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], change, reason: str
) -> None:
    bad = variant(passage_wav, tmp_path / "bad.wav", change)
    assert enroll("voice", "--profile", str(tmp_path / "me"), "--from", str(bad), "--text", PASSAGE) == 1
    assert reason in capsys.readouterr().err
    assert not (tmp_path / "me" / "voice.wav").exists()


def test_voice_from_a_microphone_is_recorded_with_a_level_meter_and_kept(
    pulseaudio: dict[str, str], passage_wav: Path, tmp_path: Path
) -> None:
    """A real microphone path: the passage plays into a private PulseAudio null sink whose monitor is the mic."""
    profile = tmp_path / "me"
    samples, rate = read_wav(passage_wav)
    env = {**pulseaudio, "PULSE_SOURCE": "avatar_mic.monitor", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "avatar", "enroll", "voice", "--profile", str(profile), "--mic", "pulse"]
    enrolling = subprocess.Popen(
        [*command, "--seconds", f"{samples.size / rate + 1.5:.1f}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30  # until the recording stream exists, so no word is missed
        while not subprocess.run(
            ["pactl", "list", "short", "source-outputs"], env=pulseaudio, capture_output=True, text=True, check=False
        ).stdout.strip():
            assert enrolling.poll() is None, enrolling.communicate()[1]
            assert time.monotonic() < deadline, "the enrolment never opened the microphone"
            time.sleep(0.1)
        subprocess.run(["paplay", "--device=avatar_mic", str(passage_wav)], env=pulseaudio, check=True, timeout=60)
        out, err = enrolling.communicate(timeout=120)
    finally:
        enrolling.kill()
    assert enrolling.returncode == 0, err
    assert PASSAGE[:40] in out  # the passage is shown to be read
    meter = [line for line in out.splitlines() if "dBFS" in line]  # each \r redraw reads as a line
    assert len(meter) > 50 and any("#" * 10 in line for line in meter)  # a live meter that moved with the voice
    assert "voice enrolled" in out and (profile / "voice.wav").is_file()
    assert (profile / "voice.txt").read_text().strip() == PASSAGE


def test_a_recording_of_other_words_is_refused(
    passage_wav: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = "The quick brown fox jumps over the lazy dog, and then it runs away into the forest to hide."
    assert enroll("voice", "--profile", str(tmp_path / "me"), "--from", str(passage_wav), "--text", other) == 1
    assert "does not match the text" in capsys.readouterr().err


def test_face_from_the_bundled_portrait_is_cropped_and_kept(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), cv2.cvtColor(default_portrait(), cv2.COLOR_RGB2BGR))
    assert enroll("face", "--profile", str(tmp_path / "me"), "--from", str(photo)) == 0
    saved = cv2.imread(str(tmp_path / "me" / "face.png"))
    assert saved.shape == (512, 512, 3)
    assert "face enrolled" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: np.full_like(p, 128), "no frontal face found"),
        (lambda p: np.concatenate([p, p], axis=1), "2 faces found"),
        (lambda p: (p * 0.12).astype(np.uint8), "too dark"),
        (lambda p: cv2.resize(p, (320, 320)), "px wide"),
    ],
    ids=["no-face", "two-faces", "dark", "small"],
)
def test_bad_face_pictures_are_refused_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make, reason: str
) -> None:
    photo = tmp_path / "bad.png"
    cv2.imwrite(str(photo), cv2.cvtColor(make(default_portrait()), cv2.COLOR_RGB2BGR))
    assert enroll("face", "--profile", str(tmp_path / "me"), "--from", str(photo)) == 1
    assert reason in capsys.readouterr().err


def test_face_from_a_video_keeps_the_calm_stretch(tmp_path: Path) -> None:
    portrait = default_portrait()
    frames = []
    for i in range(125):  # 5 s at 25 fps: talking (mouth region flickers) for 2 s, then still
        frame = portrait.copy()
        if i < 50:
            frame[150:175, 200:260] = (i * 37) % 255
        frames.append(frame)
    video = tmp_path / "me.mp4"
    write_clip(video, frames, 25)
    assert enroll("face", "--profile", str(tmp_path / "me"), "--from", str(video)) == 0
    profile = Profile.open(str(tmp_path / "me"))
    assert set(profile.validate()) == {"face.png", "face.mp4"}


def test_persona_template_is_written_and_validated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "me"
    assert enroll("persona", "--profile", str(folder)) == 0
    assert "name =" in (folder / "persona.toml").read_text()
    assert enroll("persona", "--profile", str(folder), "--check") == 0
    (folder / "persona.toml").write_text('name = "Alex"\nfacts = "not a list"\n')
    assert enroll("persona", "--profile", str(folder), "--check") == 1
    assert "persona.toml: facts: Input should be a valid list" in capsys.readouterr().err


def test_a_broken_profile_names_the_file_and_the_problem(passage_wav: Path, tmp_path: Path) -> None:
    folder = tmp_path / "me"
    folder.mkdir()
    (folder / "voice.wav").write_bytes(b"RIFF....not really")
    (folder / "voice.txt").write_text("hello")
    with pytest.raises(ProfileError, match=r"voice\.wav: not a WAV file"):
        Profile.open(str(folder)).load()
    (folder / "voice.txt").unlink()
    with pytest.raises(ProfileError, match=r"voice\.txt: missing"):
        Profile.open(str(folder)).load()
    with pytest.raises(ProfileError, match="no profile at"):
        Profile.open(str(tmp_path / "nobody"))
