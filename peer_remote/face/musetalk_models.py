"""Loading MuseTalk 1.5's networks from a models directory, and tiny random stand-ins for CPU tests.

Layout (what ``container/`` fetches)::

    MODELS/musetalkV15/musetalk.json   UNet2DConditionModel config (8 input channels, 384-d cross-attention)
    MODELS/musetalkV15/unet.pth        its state dict
    MODELS/sd-vae/                     sd-vae-ft-mse (diffusers AutoencoderKL)
    MODELS/whisper/                    whisper-tiny (transformers WhisperModel; only the encoder is used)
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peer_remote.face.base import FaceError

logger = logging.getLogger(__name__)

UNET_DIR = "musetalkV15"
VAE_DIR = "sd-vae"
WHISPER_DIR = "whisper"


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
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import WhisperFeatureExtractor, WhisperModel

    check_models_dir(models_dir)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise FaceError("MuseTalk was asked to run on CUDA but no GPU is visible")
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    config = json.loads((models_dir / UNET_DIR / "musetalk.json").read_text())
    unet = UNet2DConditionModel.from_config(config)
    state = torch.load(models_dir / UNET_DIR / "unet.pth", map_location="cpu", weights_only=True)
    unet.load_state_dict(state)
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


def write_tiny_models(models_dir: Path, seed: int = 0) -> Path:
    """Randomly initialised networks of MuseTalk's architectures, small enough for a CPU, in the real layout.

    Same block structure, channel wiring (8 -> 4), latent size (32x32 for a 256x256 crop), cross-attention
    width (384, whisper-tiny's) and whisper front end (80 mel bins, 1500 positions); fewer and narrower layers.
    """
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import WhisperConfig, WhisperModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=32,
        in_channels=8,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=384,
        attention_head_dim=8,
        norm_num_groups=16,
    )
    (models_dir / UNET_DIR).mkdir(parents=True, exist_ok=True)
    (models_dir / UNET_DIR / "musetalk.json").write_text(json.dumps(dict(unet.config)))
    torch.save(unet.state_dict(), models_dir / UNET_DIR / "unet.pth")
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(8, 16, 16, 16),
        layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        norm_num_groups=8,
        sample_size=256,
    )
    vae.save_pretrained(models_dir / VAE_DIR)
    whisper = WhisperModel(
        WhisperConfig(
            d_model=384,
            encoder_layers=2,
            decoder_layers=1,
            encoder_attention_heads=6,
            decoder_attention_heads=6,
            encoder_ffn_dim=256,
            decoder_ffn_dim=256,
            num_mel_bins=80,
            max_source_positions=1500,
            vocab_size=128,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
            decoder_start_token_id=1,
            max_target_positions=32,
        )
    )
    whisper.save_pretrained(models_dir / WHISPER_DIR)
    return models_dir
