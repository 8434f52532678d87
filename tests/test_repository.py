"""The repository's promises to a newcomer: the README's two commands and CI running the same test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    quick_start = text[text.index("## Quick start") : text.index("## Running the parts separately")]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", quick_start, flags=re.S)]


def test_readme_gives_exactly_two_commands_demo_and_tests() -> None:
    assert readme_commands() == ["uv run avatar demo", "uv run --group dev pytest"]


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in [line.strip() for line in ci]


def test_top_level_layout() -> None:
    for name in (
        "signaling",
        "peer_local",
        "peer_remote",
        "media",
        "container",
        "pyproject.toml",
        "README.md",
        "uv.lock",
    ):
        assert (ROOT / name).exists(), name


def test_signaling_does_not_import_media_or_the_peers() -> None:
    for path in (ROOT / "signaling").rglob("*.py"):
        source = path.read_text()
        assert not re.search(r"^\s*(from|import) (media|peer_local|peer_remote)\b", source, flags=re.M), path
