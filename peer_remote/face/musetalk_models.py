"""Loading MuseTalk 1.5's networks from a models directory (random ones in the same files: musetalk_random_weights).

Layout (what ``container/`` fetches)::

    MODELS/musetalkV15/musetalk.json   UNet2DConditionModel config (8 input channels, 384-d cross-attention)
    MODELS/musetalkV15/unet.pth        its state dict
    MODELS/sd-vae/                     sd-vae-ft-mse (diffusers AutoencoderKL)
    MODELS/whisper/                    whisper-tiny (transformers WhisperModel; only the encoder is used)
    MODELS/dwpose/dw-ll_ucoco_384.onnx DWPose, for upstream's landmark crop (peer_remote/face/face_landmarks.py)
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from peer_remote.face.base import FaceError
from signaling.settings import SettingsGroup

logger = logging.getLogger(__name__)

UNET_DIR = "musetalkV15"
VAE_DIR = "sd-vae"
WHISPER_DIR = "whisper"


class MuseTalkSettings(SettingsGroup):
    """MuseTalk (``--face musetalk``): where its networks are and what runs them."""

    key_prefix = "musetalk_"
    keys = {"device": "face_device"}

    models: Path = Field(default=Path("/models"), description="musetalk: models directory (container/ fills it)")
    device: str = Field(default="cuda", description="musetalk: cuda (fp16) or cpu (fp32)")


@dataclass
class MuseTalkModels:
    unet: Any
    vae: Any
    whisper_encoder: Any
    feature_extractor: Any
    device: Any
    dtype: Any

    @property
    def latent_scale(self) -> float:
        return float(getattr(self.vae.config, "scaling_factor", 0.18215))


def check_models_dir(models_dir: Path) -> None:
    missing = [
        str(p)
        for p in (
            models_dir / UNET_DIR / "musetalk.json",
            models_dir / UNET_DIR / "unet.pth",
            models_dir / VAE_DIR / "config.json",
            models_dir / WHISPER_DIR / "config.json",
        )
        if not p.is_file()
    ]
    if missing:
        raise FaceError(
            f"MuseTalk models missing in {models_dir}: {', '.join(missing)}. "
            "On the GPU box, container/fetch_models.sh fills this directory."
        )


def load_models(models_dir: Path, device: str = "cuda") -> MuseTalkModels:
    """Load the UNet (config + state dict), the VAE and the whisper encoder; fp16 on CUDA, fp32 on the CPU."""
    import torch
    from diffusers import AutoencoderKL
    from transformers import WhisperFeatureExtractor, WhisperModel

    check_models_dir(models_dir)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise FaceError("MuseTalk was asked to run on CUDA but no GPU is visible")
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    config = json.loads((models_dir / UNET_DIR / "musetalk.json").read_text())
    unet = load_unet(config, models_dir / UNET_DIR / "unet.pth")
    vae = AutoencoderKL.from_pretrained(models_dir / VAE_DIR)
    whisper = WhisperModel.from_pretrained(models_dir / WHISPER_DIR).encoder
    extractor_config = models_dir / WHISPER_DIR / "preprocessor_config.json"
    extractor = (
        WhisperFeatureExtractor.from_pretrained(models_dir / WHISPER_DIR)
        if extractor_config.is_file()
        else WhisperFeatureExtractor(feature_size=whisper.config.num_mel_bins)
    )
    for module in (unet, vae, whisper):
        module.to(device=device, dtype=dtype).eval().requires_grad_(False)
    logger.info("MuseTalk models loaded from %s on %s (%s)", models_dir, device, dtype)
    return MuseTalkModels(unet, vae, whisper, extractor, torch.device(device), dtype)


def load_unet(config: dict[str, Any], weights: Path) -> Any:
    """UNet2DConditionModel(**config) with the state dict in ``weights`` (upstream musetalk/models/unet.py ``UNet``).

    Built on the meta device and given the loaded tensors (memory-mapped where the file allows), so the 3.4 GB
    network is neither randomly initialised first nor held twice in memory.
    """
    import torch
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(config)
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # a file in torch's legacy (non-zip) format cannot be memory-mapped
        state = torch.load(weights, map_location="cpu", weights_only=True)
    try:
        unet.load_state_dict(state, assign=True)
    except RuntimeError as exc:
        raise FaceError(f"{weights} does not match {weights.parent / 'musetalk.json'}: {exc}") from exc
    left = [name for name, t in [*unet.named_parameters(), *unet.named_buffers()] if t.is_meta]
    if left:
        raise FaceError(f"{weights} left parts of the UNet without weights: {', '.join(left[:5])}")
    return unet
