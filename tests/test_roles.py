"""Dependencies follow the machines: the laptop role installs no GPU stack, the avatar's CPU role no torch.

Guards issue 18's figures: before the role extras, one flat dependency list put CUDA torch, triton and the NVIDIA
libraries (about 4 GB) on every laptop and into the first `uv run avatar demo`.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import av
import pytest
from packaging.markers import Marker

from benchmarks.harness.processes import stop_process
from signaling.server import SignalingService
from tests.peer_helpers import start_test_pattern_remote

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "avatar"

PLATFORMS = {
    "linux": {
        "sys_platform": "linux",
        "platform_machine": "x86_64",
        "platform_system": "Linux",
        "os_name": "posix",
    },
    "windows": {
        "sys_platform": "win32",
        "platform_machine": "AMD64",
        "platform_system": "Windows",
        "os_name": "nt",
    },
}
PYTHON = {
    "python_version": "3.11",
    "python_full_version": "3.11.9",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "implementation_version": "3.11.9",
    "platform_release": "",
    "platform_version": "",
    "extra": "",
}


def is_gpu_stack(name: str) -> bool:
    return name in {"torch", "triton", "diffusers", "transformers"} or name.startswith("nvidia-")


@functools.cache
def lock_packages() -> dict[str, dict[str, Any]]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    packages: dict[str, dict[str, Any]] = {}
    for package in lock["package"]:
        # one version per name keeps the closure exact; a forked resolution would need the lock's version fields
        assert package["name"] not in packages, f"{package['name']} is locked in several versions"
        packages[package["name"]] = package
    return packages


def closure(roots: Iterable[dict[str, Any]], platform: str) -> set[str]:
    """Names of every locked package that installing ``roots`` (lock dependency entries) brings on ``platform``."""
    packages = lock_packages()
    environment = {**PYTHON, **PLATFORMS[platform]}
    seen: set[tuple[str, str | None]] = set()
    pending = list(roots)
    while pending:
        entry = pending.pop()
        if "marker" in entry and not Marker(entry["marker"]).evaluate(environment):
            continue
        for extra in [None, *entry.get("extra", [])]:
            if (entry["name"], extra) in seen:
                continue
            seen.add((entry["name"], extra))
            package = packages[entry["name"]]
            pending += package.get("dependencies", []) if extra is None else package["optional-dependencies"][extra]
    return {name for name, _ in seen}


def role(*extras: str) -> list[dict[str, Any]]:
    return [{"name": PROJECT, "extra": list(extras)}]


def group(name: str) -> list[dict[str, Any]]:
    return list(lock_packages()[PROJECT]["dev-dependencies"][name])


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_the_laptop_role_installs_no_torch_cuda_or_transformers(platform: str) -> None:
    installed = closure(role("local"), platform)
    assert {"faster-whisper", "onnxruntime", "sounddevice", "pyvirtualcam"} <= installed
    assert not {name for name in installed if is_gpu_stack(name)}
    assert not installed & {"llama-cpp-python", "piper-tts", "vastai", "silero-vad"}


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_the_avatars_cpu_role_installs_no_torch(platform: str) -> None:
    installed = closure(role("remote"), platform)
    assert {"piper-tts", "scikit-image"} <= installed
    assert ("llama-cpp-python" in installed) == (platform == "linux")
    assert not {name for name in installed if is_gpu_stack(name)}
    assert not installed & {"pyvirtualcam", "sounddevice", "soundcard", "faster-whisper"}


def test_signaling_and_media_alone_need_neither_role() -> None:
    installed = closure(role(), "linux")
    assert "aiortc" in installed
    assert not {name for name in installed if is_gpu_stack(name)}
    assert not installed & {"onnxruntime", "faster-whisper", "piper-tts", "llama-cpp-python", "pyvirtualcam"}


def test_a_checkouts_default_install_is_the_demo_without_torch() -> None:
    assert lock_packages()[PROJECT]["default-groups"] == ["demo"]
    installed = closure(group("demo"), "linux")
    assert {"llama-cpp-python", "piper-tts", "faster-whisper", "pyvirtualcam"} <= installed
    assert not {name for name in installed if is_gpu_stack(name)}


def test_the_test_group_installs_every_role() -> None:
    installed = closure(group("dev"), "linux")
    assert {"torch", "diffusers", "transformers", "vastai", "llama-cpp-python", "faster-whisper", "pytest"} <= installed


def test_musetalk_brings_torch_and_deploy_brings_vastai() -> None:
    assert {"torch", "diffusers", "transformers"} <= closure(role("musetalk"), "linux")
    assert "vastai" in closure(role("deploy"), "linux")


# --- the laptop's role alone, installed into a fresh environment -------------------------------------------------

NOT_THE_LAPTOPS = ("torch", "diffusers", "transformers", "llama_cpp", "piper", "skimage", "vastai")


def role_environment(directory: Path, extra: str, *leave_out: str) -> Path:
    """A new environment with one extra alone, from the lock and uv's cache (offline: what the test group's
    install already fetched), the project editable as a checkout's; its Python."""
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv is not on PATH (the README's commands run through uv)"
    venv = directory / "venv"
    command = [uv, "sync", "--frozen", "--offline", "--no-default-groups", "--extra", extra]
    command += [arg for package in leave_out for arg in ("--no-install-package", package)]
    result = subprocess.run(
        [*command, "--python", sys.executable, "--project", str(ROOT), "--quiet"],
        env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return venv / "bin" / "python"


@pytest.fixture(scope="module")
def laptop_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return role_environment(tmp_path_factory.mktemp("laptop"), "local")


def run_in(python: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.slow
def test_the_laptop_environment_has_none_of_the_other_roles_packages(laptop_python: Path) -> None:
    found = run_in(
        laptop_python,
        "-c",
        f"import importlib.util; print([m for m in {NOT_THE_LAPTOPS!r} if importlib.util.find_spec(m)])",
    )
    assert found.stdout.strip() == "[]", found.stdout + found.stderr


@pytest.mark.slow
@pytest.mark.parametrize("command", ["local", "devices", "enroll", "transcribe", "token", "control", "log"])
def test_the_laptops_commands_start_with_the_laptop_role_alone(laptop_python: Path, command: str) -> None:
    result = run_in(laptop_python, "-m", "avatar", command, "--help")
    assert result.returncode == 0, result.stderr
    assert f"avatar {command}" in result.stdout


@pytest.mark.slow
def test_the_avatars_command_names_the_extra_it_needs_instead_of_a_traceback(laptop_python: Path) -> None:
    result = run_in(laptop_python, "-m", "avatar", "remote", "--source", "test-pattern")
    assert result.returncode == 2
    assert "needs the `remote` extra" in result.stderr and "uv sync --extra remote" in result.stderr
    assert "piper-tts" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_musetalk_without_its_extra_names_the_extra(laptop_python: Path) -> None:
    probe = (
        "from pathlib import Path\n"
        "from peer_remote.face.base import FaceError\n"
        "from peer_remote.face.musetalk import MuseTalkAnimator\n"
        "try:\n"
        "    MuseTalkAnimator(Path('models'))\n"
        "except FaceError as error:\n"
        "    print(error)\n"
    )
    result = run_in(laptop_python, "-c", probe)
    assert "MuseTalk needs the `musetalk` extra (torch, diffusers, transformers not installed)" in result.stdout, (
        result.stdout + result.stderr
    )


@pytest.mark.slow
async def test_the_laptop_role_alone_receives_and_records_the_avatar(
    laptop_python: Path, signaling: SignalingService, token: str, tmp_path: Path
) -> None:
    """`avatar local` from the laptop-only environment against `avatar remote` from the full one."""
    remote = await start_test_pattern_remote(signaling, token, tmp_path / "remote.log")
    recording = tmp_path / "out.mp4"
    try:
        local = await asyncio.create_subprocess_exec(
            *(str(laptop_python), "-m", "avatar", "local", "--signaling", signaling.base_url, "--room", "t"),
            *("--ice-host", "127.0.0.1", "--input", "none", "--camera", "none", "--mic-out", "none"),
            *("--control-port", "0", "--record", str(recording), "--duration", "2"),
            cwd=ROOT,
            env={**os.environ, "AVATAR_TOKEN": token},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(90):
                _, err = await local.communicate()
        finally:
            await stop_process(local)
    finally:
        await stop_process(remote)
    assert local.returncode == 0, err.decode()[-2000:]
    with av.open(str(recording)) as container:
        assert {stream.type for stream in container.streams} == {"audio", "video"}


def test_choosing_a_laptop_command_imports_no_gpu_llm_or_tts_package() -> None:
    """In the full environment too: the laptop's commands load without torch, llama.cpp or Piper."""
    probe = (
        "import sys\n"
        "from avatar.main import build_parser\n"
        "for command in ('local', 'devices', 'token', 'enroll', 'transcribe'):\n"
        "    build_parser([command])\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({NOT_THE_LAPTOPS!r})))"
    )
    result = run_in(Path(sys.executable), "-c", probe)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


@pytest.mark.slow
def test_the_avatars_commands_load_with_the_avatars_role_alone(tmp_path: Path) -> None:
    """`remote` alone (llama-cpp-python left out: it is built from source, and only loaded when the LLM is)."""
    python = role_environment(tmp_path, "remote", "llama-cpp-python")
    probe = (
        "import importlib, sys\n"
        "for name in ('remote', 'box', 'speak', 'signaling', 'token'):\n"
        "    importlib.import_module('avatar.commands.' + name)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1:])))"
    )
    laptop = ("peer_local", "faster_whisper", "sounddevice", "soundcard", "pyvirtualcam", "torch")
    result = run_in(python, "-c", probe, *laptop)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
    installed = run_in(
        python, "-c", f"import importlib.util; print([m for m in {laptop[1:]!r} if importlib.util.find_spec(m)])"
    )
    assert installed.stdout.strip() == "[]", installed.stdout + installed.stderr
