"""What a role (one of the project's extras: ``local``, ``remote``, ``musetalk``, ``deploy``) needs installed.

Read from the installed project's own metadata (pyproject's optional dependencies), so the list is never repeated.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable

from packaging.markers import default_environment
from packaging.requirements import Requirement

PROJECT = "avatar"


def missing_packages(extra: str) -> list[str]:
    """The distributions ``extra`` brings on this machine that are not installed.

    Empty when the project itself is not installed (run from a bare source tree): then nothing can be told.
    """
    try:
        requirements = importlib.metadata.requires(PROJECT) or []
    except importlib.metadata.PackageNotFoundError:
        return []
    environment = {key: str(value) for key, value in default_environment().items()}
    missing = []
    for line in requirements:
        requirement = Requirement(line)
        marker = requirement.marker
        if marker is None or not marker.evaluate({**environment, "extra": extra}):
            continue
        if marker.evaluate({**environment, "extra": ""}):
            continue  # a base dependency with a platform marker, not the extra's
        try:
            importlib.metadata.distribution(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(requirement.name)
    return missing


def install_hint(extras: Iterable[str]) -> str:
    """How to add ``extras`` to a checkout's environment, or to an installed one."""
    names = list(extras)
    flags = " ".join(f"--extra {name}" for name in names)
    return f'in a checkout: uv sync {flags}; installed with pip: pip install "avatar[{",".join(names)}]"'


def missing_roles_message(command: str, extras: Iterable[str]) -> str | None:
    """Why ``avatar COMMAND`` cannot run here (which extras lack which packages), or None when nothing is missing."""
    missing = {extra: packages for extra in extras if (packages := missing_packages(extra))}
    if not missing:
        return None
    lacking = "; ".join(
        f"the `{extra}` extra ({', '.join(packages)} not installed)" for extra, packages in missing.items()
    )
    return f"`avatar {command}` needs {lacking}: {install_hint(missing)}"
