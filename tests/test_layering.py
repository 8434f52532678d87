"""One package per machine, checked from the source: who may import whom.

signaling imports nothing of ours; media imports neither peer; the laptop (peer_local) and the box (peer_remote)
never import each other; only avatar/ (the CLI and the all-in-one demo) composes both. Runtime packages never import
the benchmarks or the tests (the one exception: `avatar bench`, which runs them). The GPU image copies only what the
box runs, so the box's commands must not need the laptop's package either.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = ("signaling", "media", "peer_local", "peer_remote", "avatar", "benchmarks", "tests")

# package -> the packages of ours it may import (itself always allowed)
ALLOWED: dict[str, set[str]] = {
    "signaling": set(),
    "media": {"signaling"},
    "peer_local": {"media", "signaling"},
    "peer_remote": {"media", "signaling"},
    "avatar": {"media", "signaling", "peer_local", "peer_remote"},
}
# the one runtime module that runs the benchmarks
MAY_IMPORT_BENCHMARKS = {"avatar/commands/bench.py"}
# what the GPU box runs (its image copies these packages and not peer_local)
BOX_COMMANDS = ("avatar/commands/box.py", "avatar/commands/remote.py", "avatar/commands/signaling.py")


def imported_packages(path: Path) -> set[str]:
    """Our top-level packages imported anywhere in a module (top level or inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found.update(name.split(".")[0] for name in names if name.split(".")[0] in OURS)
    return found


def modules_of(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_package_imports_only_what_its_layer_allows(package: str) -> None:
    offences = []
    for path in modules_of(package):
        relative = path.relative_to(ROOT).as_posix()
        allowed = ALLOWED[package] | {package} | ({"benchmarks"} if relative in MAY_IMPORT_BENCHMARKS else set())
        for imported in sorted(imported_packages(path) - allowed):
            offences.append(f"{relative} imports {imported}")
    assert not offences, "\n".join(offences)


def test_the_peers_never_import_each_other_even_by_string() -> None:
    """importlib.import_module("peer_remote...") would dodge the AST check: no module names the other peer."""
    for package, other in (("peer_local", "peer_remote"), ("peer_remote", "peer_local")):
        for path in modules_of(package):
            text = path.read_text()
            assert not re.search(rf"[\"']{other}[.\"']", text), f"{path.relative_to(ROOT)} names {other}"


def test_the_box_commands_run_without_the_laptops_package() -> None:
    for relative in BOX_COMMANDS:
        assert "peer_local" not in imported_packages(ROOT / relative), relative
    image = (ROOT / "container" / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY --chown=\S+ (\w+) \./\1$", image, re.M))
    assert copied == {"signaling", "media", "avatar", "peer_remote", "container"}


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from peer_remote.service import RemotePeer\n    import media.clock\n")
    assert imported_packages(module) == {"peer_remote", "media"}
