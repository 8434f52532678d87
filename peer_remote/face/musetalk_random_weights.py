"""MuseTalk's three networks with random weights, written in upstream's file formats, for tests and benchmarks.

``real`` is the published size: the UNet of ``musetalkV15/musetalk.json`` (TMElyralab/MuseTalk), sd-vae-ft-mse
(stabilityai) and whisper-tiny (openai), each saved as upstream's download_weights.sh fetches it: ``unet.pth``
(a bare state dict) + ``musetalk.json``; ``config.json`` + ``diffusion_pytorch_model.bin``, with the attention key
names of the diffusers 0.4.2 that wrote it; ``config.json`` + ``pytorch_model.bin`` of a
WhisperForConditionalGeneration (keys under ``model.``) + ``preprocessor_config.json``. ``tiny`` keeps the
architectures, channel wiring, latent size and widths the pipeline depends on, with fewer and narrower layers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from peer_remote.face.musetalk_models import UNET_DIR, VAE_DIR, WHISPER_DIR

Size = Literal["tiny", "real"]

# musetalkV15/musetalk.json as published (diffusers 0.6.0.dev0): Stable Diffusion 1.x's UNet with 8 input
# channels (masked + reference latents) and whisper-tiny's 384-d states as cross-attention
REAL_UNET_CONFIG: dict[str, Any] = {
    "_class_name": "UNet2DConditionModel",
    "_diffusers_version": "0.6.0.dev0",
    "act_fn": "silu",
    "attention_head_dim": 8,
    "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False,
    "cross_attention_dim": 384,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 8,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "sample_size": 64,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}
TINY_UNET_CONFIG: dict[str, Any] = {
    "sample_size": 32,
    "in_channels": 8,
    "out_channels": 4,
    "layers_per_block": 1,
    "block_out_channels": [32, 64],
    "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
    "cross_attention_dim": 384,
    "attention_head_dim": 8,
    "norm_num_groups": 16,
}
# stabilityai/sd-vae-ft-mse config.json (diffusers 0.4.2; no scaling_factor: diffusers' default 0.18215 applies)
REAL_VAE_CONFIG: dict[str, Any] = {
    "_class_name": "AutoencoderKL",
    "_diffusers_version": "0.4.2",
    "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "in_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_size": 256,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
}
TINY_VAE_CONFIG: dict[str, Any] = {
    **REAL_VAE_CONFIG,
    "block_out_channels": [8, 16, 16, 16],
    "layers_per_block": 1,
    "norm_num_groups": 8,
}
# openai/whisper-tiny config.json (the fields that shape the network)
REAL_WHISPER_CONFIG: dict[str, Any] = {
    "architectures": ["WhisperForConditionalGeneration"],
    "d_model": 384,
    "encoder_layers": 4,
    "decoder_layers": 4,
    "encoder_attention_heads": 6,
    "decoder_attention_heads": 6,
    "encoder_ffn_dim": 1536,
    "decoder_ffn_dim": 1536,
    "num_mel_bins": 80,
    "max_source_positions": 1500,
    "max_target_positions": 448,
    "vocab_size": 51865,
    "pad_token_id": 50257,
    "bos_token_id": 50257,
    "eos_token_id": 50257,
    "decoder_start_token_id": 50258,
}
TINY_WHISPER_CONFIG: dict[str, Any] = {
    **REAL_WHISPER_CONFIG,
    "encoder_layers": 2,
    "decoder_layers": 1,
    "encoder_ffn_dim": 256,
    "decoder_ffn_dim": 256,
    "vocab_size": 128,
    "pad_token_id": 0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "decoder_start_token_id": 1,
    "max_target_positions": 32,
}
# diffusers >= 0.14 names the VAE's attention to_q/to_k/to_v/to_out.0; the 0.4.2 that wrote sd-vae-ft-mse's .bin
# named them query/key/value/proj_attn (diffusers converts them on load)
VAE_ATTENTION_NAMES_0_4 = {".to_q.": ".query.", ".to_k.": ".key.", ".to_v.": ".value.", ".to_out.0.": ".proj_attn."}


def write_random_models(models_dir: Path, size: Size = "tiny", seed: int = 0) -> Path:
    """Randomly initialised UNet, VAE and whisper in the layout ``load_models`` reads; returns ``models_dir``."""
    import torch

    torch.manual_seed(seed)
    write_unet(models_dir / UNET_DIR, REAL_UNET_CONFIG if size == "real" else TINY_UNET_CONFIG)
    write_vae(models_dir / VAE_DIR, REAL_VAE_CONFIG if size == "real" else TINY_VAE_CONFIG)
    write_whisper(models_dir / WHISPER_DIR, REAL_WHISPER_CONFIG if size == "real" else TINY_WHISPER_CONFIG)
    return models_dir


def write_tiny_models(models_dir: Path, seed: int = 0) -> Path:
    return write_random_models(models_dir, "tiny", seed)


def write_unet(directory: Path, config: dict[str, Any]) -> None:
    """``musetalk.json`` + ``unet.pth``: upstream's UNet class builds UNet2DConditionModel(**config), then loads it."""
    import torch
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel(**{k: v for k, v in config.items() if not k.startswith("_")})
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "musetalk.json").write_text(json.dumps(config, indent=2))
    torch.save(unet.state_dict(), directory / "unet.pth")


def write_vae(directory: Path, config: dict[str, Any]) -> None:
    import torch
    from diffusers import AutoencoderKL

    vae = AutoencoderKL(**{k: v for k, v in config.items() if not k.startswith("_")})
    state = {}
    for key, value in vae.state_dict().items():
        for new, old in VAE_ATTENTION_NAMES_0_4.items():
            key = key.replace(new, old)
        state[key] = value
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    torch.save(state, directory / "diffusion_pytorch_model.bin")


def write_whisper(directory: Path, config: dict[str, Any]) -> None:
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    fields = {k: v for k, v in config.items() if k != "architectures"}
    model = WhisperForConditionalGeneration(WhisperConfig(**fields))
    directory.mkdir(parents=True, exist_ok=True)
    written = {**json.loads(model.config.to_json_string()), "architectures": config["architectures"]}
    (directory / "config.json").write_text(json.dumps(written, indent=2))
    torch.save(model.state_dict(), directory / "pytorch_model.bin")
    WhisperFeatureExtractor(feature_size=config["num_mel_bins"]).save_pretrained(directory)
