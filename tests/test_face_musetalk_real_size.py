"""MuseTalk's loader against real-size networks with random weights in upstream's file formats (issue 16):
unet.pth + musetalk.json, sd-vae-ft-mse's config.json + diffusion_pytorch_model.bin (diffusers 0.4.2 key names),
whisper-tiny's config.json + pytorch_model.bin. The tiny networks of test_face_musetalk.py cannot show that the
published files load (key names, pickle formats, shapes); these can, on the CPU, in a couple of minutes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from peer_remote.face.musetalk import CROP, frame_windows, sinusoidal_positions
from peer_remote.face.musetalk_models import UNET_DIR, VAE_DIR, WHISPER_DIR, load_models
from peer_remote.face.musetalk_random_weights import write_random_models

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def real_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_models(tmp_path_factory.mktemp("musetalk-real") / "models", "real")


def test_the_files_are_upstreams_formats(real_models: Path) -> None:
    names = sorted(str(p.relative_to(real_models)) for p in real_models.rglob("*") if p.is_file())
    assert names == [
        f"{UNET_DIR}/musetalk.json",
        f"{UNET_DIR}/unet.pth",
        f"{VAE_DIR}/config.json",
        f"{VAE_DIR}/diffusion_pytorch_model.bin",
        f"{WHISPER_DIR}/config.json",
        f"{WHISPER_DIR}/preprocessor_config.json",
        f"{WHISPER_DIR}/pytorch_model.bin",
    ]
    assert (real_models / UNET_DIR / "unet.pth").stat().st_size > 3_300_000_000  # 850 M fp32 parameters
    vae = torch.load(real_models / VAE_DIR / "diffusion_pytorch_model.bin", mmap=True, weights_only=True)
    assert "encoder.mid_block.attentions.0.query.weight" in vae  # the names sd-vae-ft-mse's .bin has
    whisper = torch.load(real_models / WHISPER_DIR / "pytorch_model.bin", mmap=True, weights_only=True)
    assert "model.encoder.conv1.weight" in whisper  # a WhisperForConditionalGeneration checkpoint


def test_real_size_networks_load_through_the_box_loader_with_every_weight_and_run_one_step(real_models: Path) -> None:
    models = load_models(real_models, device="cpu")
    unet, vae, whisper = models.unet, models.vae, models.whisper_encoder
    assert 840e6 < sum(p.numel() for p in unet.parameters()) < 860e6
    assert 83e6 < sum(p.numel() for p in vae.parameters()) < 84.5e6
    assert whisper.config.d_model == unet.config.cross_attention_dim == 384 and whisper.config.encoder_layers == 4
    assert {p.dtype for m in (unet, vae, whisper) for p in m.parameters()} == {torch.float32}  # fp16 is for CUDA
    assert models.latent_scale == pytest.approx(0.18215)  # not in sd-vae-ft-mse's config: diffusers' default

    # every weight came from the files (a renamed key would leave a random one behind with only a warning)
    unet_file = torch.load(real_models / UNET_DIR / "unet.pth", mmap=True, weights_only=True)
    assert all(torch.equal(unet_file[k], v) for k, v in unet.state_dict().items())
    vae_file = torch.load(real_models / VAE_DIR / "diffusion_pytorch_model.bin", mmap=True, weights_only=True)
    for old, new in (("query", "to_q"), ("key", "to_k"), ("value", "to_v"), ("proj_attn", "to_out.0")):
        key = f"decoder.mid_block.attentions.0.{old}.weight"
        assert torch.equal(vae_file[key], vae.state_dict()[key.replace(f".{old}.", f".{new}.")])
    whisper_file = torch.load(real_models / WHISPER_DIR / "pytorch_model.bin", mmap=True, weights_only=True)
    assert all(torch.equal(whisper_file[f"model.encoder.{k}"], v) for k, v in whisper.state_dict().items())

    # one step of the pipeline: 1 s of audio -> 25 frames of tokens; a crop -> latents -> UNet -> decode
    audio = np.sin(np.arange(16_000) / 16_000 * 2 * np.pi * 220).astype(np.float32) * 0.3
    features = models.feature_extractor(audio, sampling_rate=16_000, return_tensors="pt").input_features
    assert features.shape == (1, 80, 3000)
    with torch.inference_mode():
        states = torch.stack(whisper(features, output_hidden_states=True).hidden_states, dim=2)[0].numpy()
    assert states.shape == (1500, 5, 384)
    tokens = frame_windows(states, 16_000, 25)
    assert tokens.shape == (25, 50, 384)
    tokens = torch.from_numpy(tokens[:1] + sinusoidal_positions(50, 384)[None])
    crop = torch.rand(1, 3, CROP, CROP) * 2 - 1
    with torch.inference_mode():
        latents = vae.encode(crop).latent_dist.mean * models.latent_scale
        assert latents.shape == (1, 4, 32, 32)
        out = unet(torch.cat([latents, latents], dim=1), torch.zeros(1, dtype=torch.long), tokens).sample
        image = vae.decode(out / models.latent_scale).sample
    assert out.shape == (1, 4, 32, 32) and image.shape == (1, 3, CROP, CROP)
    assert torch.isfinite(image).all()
