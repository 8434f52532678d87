"""Dependencies follow the machines: the laptop role installs no GPU stack, the avatar's CPU role no torch.

Guards issue 18's figures: before the role extras, one flat dependency list put CUDA torch, triton and the NVIDIA
libraries (about 4 GB) on every laptop and into the first `uv run avatar demo`.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import Marker

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
