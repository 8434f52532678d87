"""First-start model fetching into the models volume (nothing is baked into the image).

Layout written under MODELS (what :mod:`peer_remote.face.musetalk_models` and the Fish Speech sidecar load)::

    musetalkV15/unet.pth, musetalkV15/musetalk.json     TMElyralab/MuseTalk
    sd-vae/config.json, sd-vae/diffusion_pytorch_model.bin   stabilityai/sd-vae-ft-mse
    whisper/config.json, whisper/pytorch_model.bin, whisper/preprocessor_config.json   openai/whisper-tiny
    dwpose/dw-ll_ucoco_384.onnx                           yzd-v/DWPose (MuseTalk's landmark model, ONNX export)
    fish-speech-1.5/...                                   fishaudio/fish-speech-1.5 (non-commercial licence)

vLLM fetches the LLM itself into MODELS/huggingface (HF_HOME).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelFile:
    repo_id: str
    filename: str  # path inside the repository
    target: str  # path under the models directory


MUSETALK_FILES = (
    ModelFile("TMElyralab/MuseTalk", "musetalkV15/unet.pth", "musetalkV15/unet.pth"),
    ModelFile("TMElyralab/MuseTalk", "musetalkV15/musetalk.json", "musetalkV15/musetalk.json"),
    ModelFile("stabilityai/sd-vae-ft-mse", "config.json", "sd-vae/config.json"),
    ModelFile("stabilityai/sd-vae-ft-mse", "diffusion_pytorch_model.bin", "sd-vae/diffusion_pytorch_model.bin"),
    ModelFile("openai/whisper-tiny", "config.json", "whisper/config.json"),
    ModelFile("openai/whisper-tiny", "pytorch_model.bin", "whisper/pytorch_model.bin"),
    ModelFile("openai/whisper-tiny", "preprocessor_config.json", "whisper/preprocessor_config.json"),
    # MuseTalk's download_weights.sh fetches dw-ll_ucoco_384.pth from this repository for mmpose; the same
    # checkpoint's ONNX export runs on onnxruntime (peer_remote/face/face_landmarks.py), no mmcv on the box
    ModelFile("yzd-v/DWPose", "dw-ll_ucoco_384.onnx", "dwpose/dw-ll_ucoco_384.onnx"),
)

FISH_SPEECH_FILES = tuple(
    ModelFile("fishaudio/fish-speech-1.5", name, f"fish-speech-1.5/{name}")
    for name in (
        "config.json",
        "model.pth",
        "special_tokens.json",
        "tokenizer.tiktoken",
        "firefly-gan-vq-fsq-8x1024-21hz-generator.pth",
    )
)

# downloads ``filename`` of ``repo_id`` and returns the local path of the downloaded file
Downloader = Callable[[str, str], Path]


def hub_downloader(cache_dir: Path) -> Downloader:
    """Downloads through huggingface_hub (HF_TOKEN from the environment for gated repositories)."""

    def download(repo_id: str, filename: str) -> Path:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo_id=repo_id, filename=filename, cache_dir=str(cache_dir)))

    return download


def missing_files(models_dir: Path, files: tuple[ModelFile, ...]) -> list[ModelFile]:
    return [f for f in files if not (models_dir / f.target).is_file() or (models_dir / f.target).stat().st_size == 0]


def fetch_models(models_dir: Path, files: tuple[ModelFile, ...], download: Downloader | None = None) -> list[ModelFile]:
    """Fetch what is missing (idempotent: a second start fetches nothing); returns what was fetched."""
    todo = missing_files(models_dir, files)
    if not todo:
        logger.info("models complete in %s", models_dir)
        return []
    download = download or hub_downloader(models_dir / "huggingface")
    for index, item in enumerate(todo, 1):
        logger.info("fetching %d/%d: %s/%s -> %s", index, len(todo), item.repo_id, item.filename, item.target)
        source = download(item.repo_id, item.filename)
        target = models_dir / item.target
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        partial.unlink(missing_ok=True)
        try:
            os.link(source, partial)  # same volume: no second copy of a multi-GB file
        except OSError:
            shutil.copyfile(source, partial)
        partial.replace(target)  # a killed fetch never leaves a half file under the real name
    return todo
