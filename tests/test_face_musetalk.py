"""MuseTalk's loop on the CPU with tiny randomly initialised networks of the same architectures, in the real
layout: the same code loads the real MuseTalk 1.5 files on the GPU box."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from media.frames import FrameSlot
from peer_remote.face.base import FaceError
from peer_remote.face.face_landmarks import DWPOSE_FILE, INPUT_SIZE, bbox_center_scale, fix_aspect_ratio, warp_matrix
from peer_remote.face.musetalk import MuseTalkAnimator, frame_windows, sinusoidal_positions
from peer_remote.face.musetalk_crop import landmark_crop_box
from peer_remote.face.musetalk_models import load_models
from peer_remote.face.musetalk_random_weights import write_tiny_models
from tests.dwpose_stand_in import write_dwpose_stand_in
from tests.test_musetalk_crop import hand_made_face

pytestmark = pytest.mark.slow

SPEECH = (np.sin(np.arange(72_000) / 48_000 * 2 * np.pi * 250) * 12_000).astype(np.int16)  # 1.5 s


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_models(tmp_path_factory.mktemp("musetalk") / "models")


@pytest.fixture
def animator(models_dir: Path, tmp_path: Path) -> MuseTalkAnimator:
    face = MuseTalkAnimator(models_dir, device="cpu", cache_dir=tmp_path, batch_size=4)
    face.prepare()
    return face


def test_models_load_from_the_real_layout_with_the_right_shapes_and_dtypes(models_dir: Path) -> None:
    models = load_models(models_dir, device="cpu")
    assert models.unet.config.in_channels == 8 and models.unet.config.out_channels == 4
    assert models.unet.config.cross_attention_dim == models.whisper_encoder.config.d_model == 384
    assert next(models.unet.parameters()).dtype == torch.float32  # fp16 is for CUDA
    latents = torch.zeros(2, 8, 32, 32)
    tokens = torch.zeros(2, 10 * (models.whisper_encoder.config.encoder_layers + 1), 384)
    with torch.inference_mode():
        out = models.unet(latents, torch.zeros(2, dtype=torch.long), encoder_hidden_states=tokens).sample
        image = models.vae.decode(out / models.latent_scale).sample
    assert out.shape == (2, 4, 32, 32) and image.shape == (2, 3, 256, 256)


def test_audio_tokens_follow_the_audio_one_window_per_frame(animator: MuseTalkAnimator) -> None:
    animator.observe_speech(SPEECH[:48_000])
    assert len(animator._features) == 23  # 1 s at 25 fps; the last 2 frames' windows reach past the audio so far
    animator.observe_speech(SPEECH[48_000:49_000])  # less than a frame: carried over
    assert len(animator._features) == 23
    animator.observe_speech(SPEECH[49_000:])
    assert len(animator._features) == 35
    animator.end_speech()  # no more audio: the last frames are computed with zeros after the end
    assert len(animator._features) == 37  # 1.5 s -> 37 whole frames
    layers = animator.models.whisper_encoder.config.encoder_layers + 1  # type: ignore[union-attr]
    assert animator._features[0].shape == (10 * layers, 384) and animator._features[0].dtype == np.float32


def zero_positions(tokens: np.ndarray, layers: int) -> list[int]:
    """Which of a frame's 10 window positions are upstream's zero padding (all layers equal to the position code)."""
    code = sinusoidal_positions(10 * layers, 384).reshape(10, layers, 384)
    return [i for i in range(10) if np.allclose(tokens.reshape(10, layers, 384)[i], code[i], atol=1e-6)]


def test_speech_fed_a_tts_block_at_a_time_is_padded_only_at_the_ends_of_the_run(
    animator: MuseTalkAnimator,
) -> None:
    for start in range(0, 48_000, 4_410):  # 100 ms Fish Speech blocks (44.1 kHz reads), cut anywhere
        animator.observe_speech(SPEECH[start : start + 4_410])
    animator.end_speech()
    layers = animator.models.whisper_encoder.config.encoder_layers + 1  # type: ignore[union-attr]
    features = list(animator._features)
    assert len(features) == 25
    padded = {i: zero_positions(f, layers) for i, f in enumerate(features) if zero_positions(f, layers)}
    # zeros only before the first frames and after the last ones, never at a block's edges mid-run
    assert padded == {0: [0, 1, 2, 3], 1: [0, 1], 23: [8, 9], 24: [6, 7, 8, 9]}


def test_frame_windows_are_cut_to_the_clause_and_zero_padded_at_both_ends() -> None:
    """Upstream audio_processor.get_whisper_chunk: 0.5 s -> 12 frames from the first 25 positions (of the
    encoder's 1500 for its 30 s window), 4 zero positions before and 12 after, frame i from position 2i - 4."""
    hidden = (np.arange(1500, dtype=np.float32) + 1)[:, None, None] * np.ones((1, 2, 3), dtype=np.float32)
    windows = frame_windows(hidden, samples=8_000, fps=25)
    assert windows.shape == (12, 20, 3)  # floor(0.5 * 25) frames of 10 positions x 2 layers
    first = windows[0, ::2, 0].tolist()
    assert first == [0, 0, 0, 0, 1, 2, 3, 4, 5, 6]  # zeros, not copies of position 0
    assert windows[5, ::2, 0].tolist() == list(range(7, 17))  # frame 5 = position 10, from -4 to +5
    last = windows[11, ::2, 0].tolist()
    assert last == [19, 20, 21, 22, 23, 24, 25, 0, 0, 0]  # positions 25.. (the padding's states) never used
    assert windows.max() == 25


def test_a_clauses_audio_tokens_start_and_end_with_silence_as_upstream_pads_them(animator: MuseTalkAnimator) -> None:
    animator.observe_speech(SPEECH[:48_000])  # 1 s: 25 frames
    animator.end_speech()
    layers = animator.models.whisper_encoder.config.encoder_layers + 1  # type: ignore[union-attr]
    positions = sinusoidal_positions(10 * layers, 384)
    first, last = animator._features[0], animator._features[-1]
    assert np.allclose(first[: 4 * layers], positions[: 4 * layers])  # 4 zero positions (+ position code)
    assert not np.allclose(first[4 * layers :], positions[4 * layers :])
    # the last frame (24) reads positions 44..53 of 50: the last 4 are zeros
    assert np.allclose(last[6 * layers :], positions[6 * layers :])
    assert not np.allclose(last[5 * layers : 6 * layers], positions[5 * layers : 6 * layers])


def test_only_the_lower_face_changes(animator: MuseTalkAnimator) -> None:
    animator.observe_speech(SPEECH[:9_600])
    animator.end_speech()
    frames = animator.render_batch(np.stack(list(animator._features)))
    assert len(frames) == 5 and frames[0].shape == (512, 512, 3) and frames[0].dtype == np.uint8
    base = animator._base
    assert base is not None and animator._box is not None and animator._mask is not None
    changed = np.any(frames[0] != base, axis=2)
    x0, y0, x1, y1 = animator._box
    outside = changed.copy()
    outside[y0:y1, x0:x1] = False
    assert not outside.any()  # nothing outside the crop is touched
    inside = changed[y0:y1, x0:x1]
    weight = animator._mask[..., 0]
    assert inside[weight > 0.5].mean() > 0.5  # the mouth area is repainted
    assert not inside[weight == 0].any()  # and nothing where the blend mask is empty
    assert animator.times.frames == 5 and animator.times.per_frame()["unet"] > 0


def test_render_plays_speaking_frames_in_order_and_idles_otherwise(animator: MuseTalkAnimator) -> None:
    animator.observe_speech(SPEECH[:19_200])  # 10 frames
    speaking = [animator.render(FrameSlot(i, 25), SPEECH[i * 1920 : (i + 1) * 1920], True) for i in range(10)]
    assert animator.times.frames == 10 and not animator._features
    idle = animator.render(FrameSlot(10, 25), np.zeros(1920, dtype=np.int16), False)
    assert all(f.shape == idle.shape for f in speaking)
    animator.observe_speech(SPEECH[:19_200])
    animator.reset_speech()  # an interruption drops what was queued
    assert not animator._features and not animator._ready


def test_preparation_cache_is_reused(models_dir: Path, tmp_path: Path) -> None:
    first = MuseTalkAnimator(models_dir, device="cpu", cache_dir=tmp_path)
    first.prepare()
    second = MuseTalkAnimator(models_dir, device="cpu", cache_dir=tmp_path)
    second.prepare()
    assert not first.prepared_from_cache and second.prepared_from_cache
    assert torch.equal(first._latents, second._latents) and first._box == second._box
    assert first.crop_source == second.crop_source == "haar"  # no DWPose file in the tiny layout


def test_the_crop_comes_from_the_landmarks_when_a_landmark_model_is_there(models_dir: Path, tmp_path: Path) -> None:
    with_dwpose = tmp_path / "models"
    with_dwpose.mkdir()
    for part in models_dir.iterdir():
        (with_dwpose / part.name).symlink_to(part)
    landmarks = hand_made_face(left=180, right=330, nose_y=260, chin_y=400)
    center, scale = bbox_center_scale((0, 0, 512, 512))  # DWPose sees the whole prepared 512x512 portrait
    matrix = warp_matrix(center, fix_aspect_ratio(scale, INPUT_SIZE[0] / INPUT_SIZE[1]))
    write_dwpose_stand_in(with_dwpose / DWPOSE_FILE, landmarks @ matrix[:, :2].T + matrix[:, 2])

    face = MuseTalkAnimator(with_dwpose, device="cpu", cache_dir=tmp_path)
    face.prepare()
    assert face.crop_source == "landmarks"
    assert face.face_landmarks is not None and face._base is not None
    assert face._box == landmark_crop_box(face.face_landmarks(face._base), 512, 512)
    x0, y0, x1, y1 = face._box
    assert np.abs(np.subtract(face._box, (180, 120, 330, 410))).max() <= 2  # SimCC's bins: within 2 px
    # not square (~150 x 290), squashed to 256x256 like upstream's crops, and pasted back into the same box
    assert face._mask is not None and face._mask.shape == (y1 - y0, x1 - x0, 1) and y1 - y0 > 1.8 * (x1 - x0)
    face.observe_speech(SPEECH[:3_840])
    face.end_speech()
    frames = face.render_batch(np.stack(list(face._features)))
    changed = np.any(frames[0] != face._base, axis=2)
    changed[y0:y1, x0:x1] = False
    assert not changed.any()  # the generated face goes back into the same non-square box only
    haar = MuseTalkAnimator(models_dir, device="cpu", cache_dir=tmp_path)
    haar.prepare()  # same photo, no landmark model: its own cache entry, not the landmark crop
    assert not haar.prepared_from_cache and haar.crop_source == "haar" and haar._box != face._box


def test_missing_models_are_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FaceError, match=r"MuseTalk models missing in .*unet\.pth"):
        MuseTalkAnimator(tmp_path, device="cpu").prepare()
