"""Regression (issue 16, defect 7): the CUDA the box's torch builds need, the image's base, the driver floor in the
docs and the Vast.ai offer filter agree.

Each torch's CUDA is read from the lock files (the CUDA runtime wheel the torch build depends on), never assumed.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from peer_remote.box.vast import OfferFilter

ROOT = Path(__file__).resolve().parent.parent
# the box's torch environments: the app (MuseTalk) and every sidecar locked under container/
LOCKS = [ROOT / "uv.lock", *sorted((ROOT / "container").glob("*/uv.lock"))]
# the oldest Linux driver of each CUDA toolkit (NVIDIA's CUDA Toolkit release notes, "CUDA Toolkit and Corresponding
# Driver Versions"): the floor a host needs to run that CUDA, and what Vast.ai's cuda_max_good reports
DRIVER_FLOOR = {(12, 4): 550, (12, 6): 560, (12, 8): 570, (12, 9): 575, (13, 0): 580}


def version_tuple(text: str) -> tuple[int, int]:
    major, minor = text.split(".")[:2]
    return int(major), int(minor)


def torch_cuda(lock_path: Path) -> tuple[str, tuple[int, int]]:
    """(torch version, CUDA major.minor of the runtime it pulls in) from a uv lock, for Linux x86-64."""
    packages = {p["name"]: p for p in tomllib.loads(lock_path.read_text())["package"]}
    torch = packages["torch"]
    seen: set[str] = set()
    todo = ["torch"]
    while todo:  # the runtime hangs off torch directly (nvidia-cuda-runtime-cu12) or via cuda-toolkit (CUDA 13)
        name = todo.pop()
        if name in seen or name not in packages:
            continue
        seen.add(name)
        package = packages[name]
        if name.startswith("nvidia-cuda-runtime"):
            return torch["version"], version_tuple(package["version"])
        todo += [dep["name"] for dep in package.get("dependencies", [])]
        todo += [dep["name"] for deps in package.get("optional-dependencies", {}).values() for dep in deps]
    raise AssertionError(f"{lock_path}: torch {torch['version']} pulls in no CUDA runtime")


def test_every_torch_the_box_installs_runs_on_the_driver_floor() -> None:
    floor = version_tuple(str(OfferFilter().min_cuda))
    found = {lock.relative_to(ROOT).as_posix(): torch_cuda(lock) for lock in LOCKS}
    assert "uv.lock" in found and "container/vllm/uv.lock" in found
    too_new = {path: cuda for path, (_, cuda) in found.items() if cuda > floor}
    assert not too_new, f"torch builds need CUDA {too_new}, newer than the box's floor {floor}"
    assert found["container/vllm/uv.lock"] == ("2.8.0", (12, 8))  # what vLLM 0.11.0 was built against
    assert found["uv.lock"][1] == floor  # MuseTalk's torch: the newest CUDA the floor admits


def test_the_image_base_the_docs_and_the_vast_filter_name_one_cuda_and_one_driver_floor() -> None:
    offer = OfferFilter()
    floor = version_tuple(str(offer.min_cuda))
    assert f"cuda_max_good>={offer.min_cuda}" in offer.query()

    dockerfile = (ROOT / "container" / "Dockerfile").read_text()
    base = re.search(r"^FROM nvidia/cuda:(\d+\.\d+)\.\d+-", dockerfile, flags=re.MULTILINE)
    assert base and version_tuple(base.group(1)) == floor, "the base image's CUDA is not the floor"

    driver = DRIVER_FLOOR[floor]
    docs = (ROOT / "docs" / "deploy.md").read_text()
    for name, text in (("docs/deploy.md", docs), ("container/Dockerfile", dockerfile)):
        stated = re.findall(r"driver (?:must be )?>= ?(\d+)", text)
        assert stated and set(stated) == {str(driver)}, f"{name} states driver floor {stated}, not {driver}"
    assert f"CUDA {offer.min_cuda}" in docs
