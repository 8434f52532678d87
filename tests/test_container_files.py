"""The container's files: the Dockerfile passes hadolint (Docker itself cannot run here), scripts parse, and the
entrypoint refuses to start an open box."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTAINER = ROOT / "container"
SCRIPTS = ("entrypoint.sh", "smoke", "fetch_models.sh")


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(CONTAINER / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_as_a_user_builds_from_the_lock_and_bakes_no_models() -> None:
    text = (CONTAINER / "Dockerfile").read_text()
    users = re.findall(r"^USER (\S+)", text, flags=re.MULTILINE)
    assert users and users[-1] not in ("root", "0", "0:0")
    assert re.search(r"^FROM nvidia/cuda:[\d.]+-\S*runtime", text, flags=re.MULTILINE)
    assert "COPY --chown=avatar:avatar pyproject.toml uv.lock" in text
    assert '--branch "${FISH_SPEECH_REF}"' in text and "ARG FISH_SPEECH_REF=v1.5" in text
    assert "--project /opt/fish-speech-env" in text  # Fish Speech's packages from its own lock (test_fish_speech_env)
    assert 'VOLUME ["/models"]' in text and "huggingface-cli download" not in text
    assert 'ENTRYPOINT ["/app/container/entrypoint.sh"]' in text
    assert "AVATAR_TOKEN" not in text.split("ENV", 1)[1]  # no secret baked into the image


def test_the_image_installs_the_avatars_role_not_the_laptops() -> None:
    text = (CONTAINER / "Dockerfile").read_text()
    syncs = [line for line in text.splitlines() if "uv sync" in line and "--project" not in line]
    assert len(syncs) == 1, syncs
    flags = syncs[0].split()
    assert {"--frozen", "--no-default-groups", "--no-cache"} <= set(flags)
    extras = {flags[i + 1] for i, flag in enumerate(flags) if flag == "--extra"}
    assert extras == {"remote", "musetalk"}
    assert "--all-extras" not in flags and "--group" not in flags


def test_scripts_are_executable_and_parse() -> None:
    for name in SCRIPTS:
        path = CONTAINER / name
        assert os.access(path, os.X_OK), f"{name} is not executable"
        result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, timeout=10, check=False)
        assert result.returncode == 0, result.stderr


def test_entrypoint_refuses_to_start_without_a_token() -> None:
    env = {k: v for k, v in os.environ.items() if k != "AVATAR_TOKEN"}
    result = subprocess.run(
        [str(CONTAINER / "entrypoint.sh")], capture_output=True, text=True, timeout=30, env=env, check=False
    )
    assert result.returncode == 2
    assert "set AVATAR_TOKEN" in result.stderr


def test_entrypoint_hands_over_to_avatar_box_with_its_flags() -> None:
    env = {**os.environ, "AVATAR_TOKEN": "t", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    result = subprocess.run(
        [str(CONTAINER / "entrypoint.sh"), "--help"], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "usage: avatar box" in result.stdout and "--health-timeout" in result.stdout
