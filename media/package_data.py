"""Files that ship inside installed packages (model weights, voices), found without importing the package."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def package_file(package: str, *parts: str) -> Path:
    """Path of ``parts`` inside ``package``; raises FileNotFoundError saying what is missing.

    Importing some of these packages would be costly (torch) or fail (a CLI dependency we leave out), so
    the package's directory is located through its import spec only.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the {package} package is not installed (see the README: what each machine installs)")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"{'/'.join(parts)} not found in the {package} package ({path})")
    return path
