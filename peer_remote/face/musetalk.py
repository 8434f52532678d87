"""MuseTalk 1.5's real-time loop, written from its published architecture (clean room).

Preparation (once per photo, cached by content hash): upstream's face crop from DWPose's 68 face landmarks
(:mod:`peer_remote.face.musetalk_crop`; a Haar box only when the landmark model is missing, on CPU test
machines), resized to 256x256, VAE latents of the crop and of the crop with its lower half masked, and a
feathered blend mask over the lower face (the landmarks' hull instead of BiSeNet parsing).

Per run of speech (fed a TTS block at a time): whisper-tiny encoder hidden states (every layer, 50 per second)
of the run's audio, cut to its length and zero-padded only before its start and after its end -> for each 25 fps
frame a window of 10 positions x all layers = 50 tokens of 384, plus a sinusoidal position code (upstream
musetalk/utils/audio_processor.py ``get_whisper_chunk``, which does this for a whole file). Per frame (batched):
one UNet step at timestep 0 on [masked latent, reference latent] with the audio tokens as cross-attention ->
VAE decode -> feathered paste into the original frame.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from media.frames import AUDIO_RATE, FrameSlot
from media.profile.face_geometry import load_image, prepare_portrait
from peer_remote.face.base import FaceError
from peer_remote.face.face_landmarks import load_face_landmarks
from peer_remote.face.musetalk_crop import (
    Box,
    ellipse_blend_mask,
    haar_crop_box,
    landmark_blend_mask,
    landmark_crop_box,
)
from peer_remote.face.musetalk_models import MuseTalkModels, MuseTalkSettings, load_models
from peer_remote.face.portrait import apply_head_motion

logger = logging.getLogger(__name__)

CROP = 256
WHISPER_RATE = 16_000
WHISPER_SEGMENT = 30 * WHISPER_RATE  # audio_processor.get_audio_feature: 30 s segments, one encoder pass each
FEATURES_PER_SECOND = 50  # whisper-tiny encoder positions per second (audio_processor: audio_fps = 50)
PADDING_LEFT, PADDING_RIGHT = 2, 2  # frames of context each side (realtime_inference: audio_padding_length_*)
WINDOW = 2 * (PADDING_LEFT + PADDING_RIGHT + 1)  # audio_processor: audio_feature_length_per_frame = 10
LOOKAHEAD_FRAMES = 2  # a frame's window reaches 5 positions (2 frames and a half) past its own start
CONTEXT_S = 10  # audio kept before the next frame to compute, as the encoder's left context
PREPARE_VERSION = 2
BATCH_SIZE = 8  # frames per UNet call on the box (benchmarks/gpu_check.py measures this size)
PACKAGES = ("torch", "diffusers", "transformers")  # the `musetalk` extra's; imported only when a model loads


def sinusoidal_positions(length: int, dim: int) -> np.ndarray:
    position = np.arange(length)[:, None]
    div = np.exp(np.arange(0, dim, 2) * (-math.log(10_000.0) / dim))
    table = np.zeros((length, dim), dtype=np.float32)
    table[:, 0::2] = np.sin(position * div)
    table[:, 1::2] = np.cos(position * div)
    return table


def frame_windows(hidden: np.ndarray, samples: int, fps: int, first: int = 0, stop: int | None = None) -> np.ndarray:
    """(positions, layers, dim) whisper states of ``samples`` 16 kHz samples -> (frames, 10 * layers, dim) tokens
    for frames ``first`` to ``stop`` (default: all).

    Upstream musetalk/utils/audio_processor.py ``get_whisper_chunk``: num_frames = floor(seconds * fps); the states
    are cut to floor(seconds * 50) positions (the encoder's 30 s of padding dropped), then zeros are added,
    ceil(50 / fps) * audio_padding_length_left positions before and ceil(50 / fps) * 3 * audio_padding_length_right
    after; frame i takes the 10 positions from floor(i * 50 / fps). Integer arithmetic here, the same floors.
    """
    frames = samples * fps // WHISPER_RATE
    actual = samples * FEATURES_PER_SECOND // WHISPER_RATE
    per_frame = math.ceil(FEATURES_PER_SECOND / fps)
    states = hidden[:actual]
    zeros = np.zeros((1, *hidden.shape[1:]), dtype=hidden.dtype)
    padded = np.concatenate(
        [np.repeat(zeros, per_frame * PADDING_LEFT, 0), states, np.repeat(zeros, per_frame * 3 * PADDING_RIGHT, 0)]
    )
    starts = [i * FEATURES_PER_SECOND // fps for i in range(first, frames if stop is None else min(stop, frames))]
    out = [padded[start : start + WINDOW].reshape(-1, hidden.shape[-1]) for start in starts]
    return np.stack(out) if out else np.zeros((0, WINDOW * hidden.shape[1], hidden.shape[-1]), dtype=hidden.dtype)


@dataclass
class StageTimes:
    """Milliseconds spent per stage (accumulated), for `avatar bench face` and benchmarks/gpu_check.py."""

    ms: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(("vae_encode", "whisper", "unet", "vae_decode", "paste"), 0.0)
    )
    frames: int = 0

    def add(self, stage: str, started: float) -> None:
        self.ms[stage] += (time.perf_counter() - started) * 1000

    def per_frame(self) -> dict[str, float]:
        return {k: round(v / max(1, self.frames), 3) for k, v in self.ms.items() if k != "vae_encode"}


class SharedMuseTalkModels:
    """MuseTalk's networks and the landmark model, loaded once and used read-only by every portrait's animator
    (several rooms on one box: one copy of the weights in GPU memory)."""

    def __init__(self) -> None:
        self.models: MuseTalkModels | None = None
        self.face_landmarks: Callable[[np.ndarray], np.ndarray] | None = None
        self._loaded = False
        self._lock = threading.Lock()

    def load(self, models_dir: Path, device: str) -> None:
        with self._lock:
            if not self._loaded:
                self.models = self.models or load_models(models_dir, device)
                self.face_landmarks = self.face_landmarks or load_face_landmarks(models_dir)
                self._loaded = True


class MuseTalkAnimator:
    """A :class:`~peer_remote.face.base.FaceAnimator` on MuseTalk; fed each clause's audio ahead of rendering."""

    def __init__(
        self,
        models_dir: Path,
        image_path: Path | None = None,
        width: int = 512,
        height: int = 512,
        device: str = "cuda",
        cache_dir: Path | None = None,
        batch_size: int = BATCH_SIZE,
        fps: int = 25,
    ) -> None:
        missing = [name for name in PACKAGES if importlib.util.find_spec(name) is None]
        if missing:
            raise FaceError(
                f"MuseTalk needs the `musetalk` extra ({', '.join(missing)} not installed): uv sync --extra musetalk"
            )
        self.models_dir = models_dir
        self.image_path = image_path
        self.width = width
        self.height = height
        self.device = device
        self.cache_dir = cache_dir
        self.batch_size = batch_size
        self.fps = fps
        self.name = f"musetalk:{device}"
        self.needs_speech_ahead = True
        self.shared = SharedMuseTalkModels()
        self.times = StageTimes()
        self.prepared_from_cache = False
        self.crop_source = ""  # "landmarks" (upstream's crop) or "haar" (the CPU fallback)
        self._base: np.ndarray | None = None
        self._face: tuple[int, int, int, int] | None = None
        self._box: Box | None = None  # crop box in the frame: x0, y0, x1, y1
        self._mask: np.ndarray | None = None  # (h, w, 1) over the crop box
        self._latents: Any = None  # (1, 8, h, w): masked + reference
        self._features: deque[np.ndarray] = deque()
        self._carry = np.zeros(0, dtype=np.int16)
        # the current run of speech at 16 kHz (whole frames); frame index of its first sample; frames computed
        self._run = np.zeros(0, dtype=np.float32)
        self._run_start = 0
        self._emitted = 0
        self._ready: deque[np.ndarray] = deque()  # rendered speaking frames, in order
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: MuseTalkSettings, image_path: Path | None, width: int, height: int, cache_dir: Path | None
    ) -> MuseTalkAnimator:
        return cls(settings.models, image_path, width, height, settings.device, cache_dir)

    @property
    def models(self) -> MuseTalkModels | None:
        return self.shared.models

    @property
    def face_landmarks(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """RGB image -> (68, 2) face landmarks (DWPose from the models directory; None: the Haar fallback)."""
        return self.shared.face_landmarks

    # -- preparation ------------------------------------------------------------------------------------

    def prepare(self) -> None:
        import torch

        if self._latents is not None:
            return
        self.shared.load(self.models_dir, self.device)
        image = load_image(self.image_path)
        landmarks_model = self.face_landmarks
        source = "landmarks" if landmarks_model is not None else "haar"
        key = hashlib.sha256(
            image.tobytes() + f"{PREPARE_VERSION}:{self.width}x{self.height}:{source}".encode()
        ).hexdigest()[:32]
        cached = self.cache_dir / f"musetalk-{key}.npz" if self.cache_dir else None
        if cached is not None and cached.is_file():
            with np.load(cached) as data:
                self._base, latents, self._mask = data["base"], data["latents"], data["mask"]
                self._box = tuple(int(v) for v in data["box"])  # type: ignore[assignment]
                self._face = tuple(int(v) for v in data["face"])  # type: ignore[assignment]
                source = str(data["source"])
            self.prepared_from_cache = True
        else:
            self._base, geometry = prepare_portrait(image, self.width, self.height)
            self._face = geometry.face
            landmarks = None
            if landmarks_model is not None:
                try:
                    landmarks = landmarks_model(self._base)
                except Exception:  # a damaged model file: a worse crop, loudly, rather than no face at all
                    logger.exception("MuseTalk: the landmark model failed on the photo")
            box = landmark_crop_box(landmarks, self.height, self.width) if landmarks is not None else None
            if landmarks is not None and box is not None:
                self._box, self._mask = box, landmark_blend_mask(box, landmarks)
            else:
                if landmarks_model is None:
                    logger.warning(
                        "MuseTalk: no landmark model (%s missing): falling back to a Haar face box, a crop unlike "
                        "the ones MuseTalk was trained on (fine for CPU tests, not for the box)",
                        self.models_dir / "dwpose",
                    )
                else:
                    logger.warning("MuseTalk: the landmark box was unusable: falling back to the Haar face box")
                source = "haar"
                self._box = haar_crop_box(geometry.face, self.width, self.height)
                self._mask = ellipse_blend_mask(self._box, geometry.face)
            latents = self._encode_latents(self._base, self._box)
            if cached is not None:
                cached.parent.mkdir(parents=True, exist_ok=True)
                tmp = cached.with_suffix(".tmp.npz")
                np.savez(
                    tmp,
                    base=self._base,
                    latents=latents,
                    mask=self._mask,
                    box=np.array(self._box),
                    face=np.array(self._face),
                    source=np.array(source),
                )
                tmp.replace(cached)
        models = self.models
        assert models is not None
        self.crop_source = source
        self._latents = torch.from_numpy(latents).to(models.device, models.dtype)
        logger.info(
            "MuseTalk face prepared (%s, crop from %s: %s)",
            "cache" if self.prepared_from_cache else "encoded",
            source,
            self._box,
        )

    def _encode_latents(self, base: np.ndarray, box: Box) -> np.ndarray:
        """Latents of the masked and the whole crop (upstream musetalk/models/vae.py ``get_latents_for_unet``)."""
        import torch

        assert self.models is not None
        started = time.perf_counter()
        x0, y0, x1, y1 = box
        # scripts/realtime_inference.py prepare_material: cv2.resize(crop, (256, 256), INTER_LANCZOS4)
        crop = cv2.resize(base[y0:y1, x0:x1], (CROP, CROP), interpolation=cv2.INTER_LANCZOS4)
        masked = crop.copy()
        masked[CROP // 2 :] = 0  # vae.py get_mask_tensor: the lower half is what the UNet paints
        batch = torch.from_numpy(np.stack([masked, crop])).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        vae = self.models.vae
        with torch.inference_mode():
            latents = (
                vae.encode(batch.to(self.models.device, self.models.dtype)).latent_dist.mean * self.models.latent_scale
            )
        masked_latent, reference_latent = latents[0:1], latents[1:2]
        out = torch.cat([masked_latent, reference_latent], dim=1).float().cpu().numpy()
        self.times.add("vae_encode", started)
        return out

    # -- audio ------------------------------------------------------------------------------------------

    def _whisper_states(self, clip: np.ndarray) -> np.ndarray:
        """(positions, layers, dim) encoder states of 16 kHz audio, 30 s per encoder pass as upstream does."""
        import torch

        assert self.models is not None
        models = self.models
        states = []
        for start in range(0, clip.size, WHISPER_SEGMENT):
            segment = clip[start : start + WHISPER_SEGMENT]
            inputs = models.feature_extractor(segment, sampling_rate=WHISPER_RATE, return_tensors="pt").input_features
            with torch.inference_mode():
                out = models.whisper_encoder(inputs.to(models.device, models.dtype), output_hidden_states=True)
            states.append(torch.stack(out.hidden_states, dim=2)[0].float().cpu().numpy())
        return np.concatenate(states)

    def observe_speech(self, samples: np.ndarray) -> None:
        """Speech's 48 kHz audio, before it is played (a TTS block at a time): audio tokens are computed now for
        every frame whose window the audio covers; the last frames wait for the next block, or for the end."""
        from scipy.signal import resample_poly

        if self.models is None:
            self.prepare()
        assert self.models is not None
        per_frame = AUDIO_RATE // self.fps
        audio = np.concatenate([self._carry, samples.astype(np.int16)])
        frames = audio.size // per_frame
        self._carry = audio[frames * per_frame :]
        if not frames:
            return
        clip = resample_poly(audio[: frames * per_frame].astype(np.float32) / 32768.0, 1, AUDIO_RATE // WHISPER_RATE)
        with self._lock:
            self._run = np.concatenate([self._run, clip.astype(np.float32)])
            self._compute_tokens(final=False)

    def _compute_tokens(self, final: bool) -> None:
        """Tokens for the run's frames not yet computed: all of them at the end of the run (zeros after it, as
        upstream pads the end of its audio), else those whose whole window is inside the audio so far. The
        encoder sees the run's audio (up to CONTEXT_S before the first new frame), zeros before its start only."""
        per_frame = WHISPER_RATE // self.fps
        total = self._run_start + self._run.size // per_frame
        ready = total if final else total - LOOKAHEAD_FRAMES
        if ready > self._emitted:
            keep_from = max(self._run_start, self._emitted - CONTEXT_S * self.fps)
            self._run = self._run[(keep_from - self._run_start) * per_frame :]
            self._run_start = keep_from
            started = time.perf_counter()
            windows = frame_windows(
                self._whisper_states(self._run),
                self._run.size,
                self.fps,
                first=self._emitted - self._run_start,
                stop=ready - self._run_start,
            )
            windows = windows + sinusoidal_positions(windows.shape[1], windows.shape[2])[None]
            self.times.add("whisper", started)
            self._features.extend(windows.astype(np.float32))
            self._emitted = ready
        if final:  # the next audio starts a new run, zero-padded at its start
            self._run = np.zeros(0, dtype=np.float32)
            self._run_start = self._emitted = 0

    def end_speech(self) -> None:
        """The run of speech ended (no audio follows soon): compute its last frames' tokens."""
        with self._lock:
            self._compute_tokens(final=True)

    def with_portrait(self, image_path: Path | None) -> MuseTalkAnimator:
        other = MuseTalkAnimator(
            self.models_dir,
            image_path,
            self.width,
            self.height,
            self.device,
            self.cache_dir,
            self.batch_size,
            self.fps,
        )
        other.shared = self.shared
        return other

    def reset_speech(self) -> None:
        with self._lock:
            self._features.clear()
            self._ready.clear()
            self._carry = np.zeros(0, dtype=np.int16)
            self._run = np.zeros(0, dtype=np.float32)
            self._run_start = self._emitted = 0

    # -- rendering ----------------------------------------------------------------------------------------

    def render_batch(self, features: np.ndarray) -> list[np.ndarray]:
        """Frames (full size, RGB) for a batch of per-frame audio tokens (B, tokens, 384)."""
        import torch

        assert self.models is not None and self._base is not None and self._box is not None and self._mask is not None
        models = self.models
        count = features.shape[0]
        started = time.perf_counter()
        tokens = torch.from_numpy(features).to(models.device, models.dtype)
        latents_in = self._latents.expand(count, -1, -1, -1)
        timestep = torch.zeros(count, device=models.device, dtype=torch.long)
        with torch.inference_mode():
            latents = models.unet(latents_in, timestep, encoder_hidden_states=tokens).sample
            if models.device.type == "cuda":
                torch.cuda.synchronize(models.device)  # so the stage times are the GPU's, not the launch's
            self.times.add("unet", started)
            started = time.perf_counter()
            images = models.vae.decode(latents / models.latent_scale).sample
        crops = ((images.float().clamp(-1, 1) + 1) * 127.5).permute(0, 2, 3, 1).to(torch.uint8).cpu().numpy()
        self.times.add("vae_decode", started)
        started = time.perf_counter()
        x0, y0, x1, y1 = self._box
        frames = []
        for crop in crops:
            face = cv2.resize(crop, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR).astype(np.float32)
            frame = self._base.copy()
            region = frame[y0:y1, x0:x1].astype(np.float32)
            frame[y0:y1, x0:x1] = (region * (1 - self._mask) + face * self._mask).astype(np.uint8)
            frames.append(frame)
        self.times.add("paste", started)
        self.times.frames += count
        return frames

    def render(self, slot: FrameSlot, audio: np.ndarray, speaking: bool) -> np.ndarray:
        if self._base is None:
            self.prepare()
        assert self._base is not None and self._face is not None
        frame = None
        if speaking:
            with self._lock:
                if not self._ready and not self._features and self._run.size:
                    self._compute_tokens(final=True)  # playback reached the run's last frames: no more audio came
                if not self._ready and self._features:
                    batch = [self._features.popleft() for _ in range(min(self.batch_size, len(self._features)))]
                    self._ready.extend(self.render_batch(np.stack(batch)))
                frame = self._ready.popleft() if self._ready else None
        if frame is None:
            frame = self._base.copy()
        return apply_head_motion(frame, slot.pts_s, self._face)
