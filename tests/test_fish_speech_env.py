"""Fish Speech's environment on the box, container/fish-speech (a locked uv project the image syncs).

Guards issue 16's defect 1: the image pinned a torch that fish-speech v1.5.0's own "stable" extra excludes
(torch<=2.4.1), so the image could not build. `.ci/run` checks that the lock is current (`uv lock --check`).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
ENV = ROOT / "container" / "fish-speech"
# fish-speech v1.5.0 pyproject.toml, [project.optional-dependencies] stable: the line the project must carry
V1_5_0_STABLE_TORCH = "torch<=2.4.1"


def project() -> dict[str, Any]:
    return tomllib.loads((ENV / "pyproject.toml").read_text())


def locked_versions() -> dict[str, Version]:
    lock = tomllib.loads((ENV / "uv.lock").read_text())
    return {package["name"]: Version(package["version"]) for package in lock["package"] if "version" in package}


def test_the_locked_torch_satisfies_fish_speech_v1_5_0s_stable_extra() -> None:
    settings = project()
    dependencies = settings["project"]["dependencies"]
    assert V1_5_0_STABLE_TORCH in dependencies
    locked = locked_versions()
    torch_lines = [Requirement(line) for line in dependencies + settings["tool"]["uv"]["constraint-dependencies"]]
    torch_lines = [r for r in torch_lines if r.name in ("torch", "torchaudio")]
    assert {r.name for r in torch_lines} == {"torch", "torchaudio"}
    for requirement in torch_lines:
        assert locked[requirement.name] in requirement.specifier, f"locked {requirement.name} breaks {requirement}"
    assert locked["torchaudio"].release[:3] == locked["torch"].release[:3]  # torchaudio is built per torch release


def test_the_environment_is_locked_for_the_box_only() -> None:
    settings = project()
    assert settings["tool"]["uv"]["environments"] == ["sys_platform == 'linux' and platform_machine == 'x86_64'"]
    assert settings["tool"]["uv"]["package"] is False  # the v1.5.0 checkout is installed apart, without deps
    lock = tomllib.loads((ENV / "uv.lock").read_text())
    assert lock["requires-python"] == settings["project"]["requires-python"] == "==3.11.*"


def test_the_image_takes_fish_speechs_packages_from_the_lock_only() -> None:
    text = (ROOT / "container" / "Dockerfile").read_text()
    assert "COPY --chown=avatar:avatar container/fish-speech/pyproject.toml container/fish-speech/uv.lock" in text
    assert re.search(r"uv sync --frozen .*--project /opt/fish-speech-env", text)
    assert "--no-deps -e ." in text  # the tag's checkout adds no dependency the lock did not resolve
    instructions = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert not re.findall(r"\btorch(?:audio)?\s*[=<>~!]", instructions), "a torch pin outside the lock"
    assert '.[stable]"' not in text
