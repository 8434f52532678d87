"""MuseTalk 1.5's real-time loop, written from its published architecture (clean room).

Preparation (once per photo, cached by content hash): the face box from the shipped Haar detector (instead of
DWPose/S3FD), a 256x256 crop with a little extra chin, VAE latents of the crop and of the crop with its lower
half masked, and a feathered blend mask over the lower face from the landmarks (instead of BiSeNet parsing).

Per TTS clause: whisper-tiny encoder hidden states (every layer, 50 per second) -> for each 25 fps frame a
window of 10 positions x all layers = 50 tokens of 384, plus a sinusoidal position code. Per frame (batched):
one UNet step at timestep 0 on [masked latent, reference latent] with the audio tokens as cross-attention ->
VAE decode -> feathered paste into the original frame.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from media.frames import AUDIO_RATE, FrameSlot
from peer_remote.face.base import FaceError
from peer_remote.face.musetalk_models import MuseTalkModels, load_models
from peer_remote.face.portrait import apply_head_motion, detect_faces, load_image, prepare_portrait

logger = logging.getLogger(__name__)

CROP = 256
WHISPER_RATE = 16_000
FEATURES_PER_SECOND = 50
WINDOW_LEFT, WINDOW_RIGHT = 4, 6  # feature positions around a frame's centre (2 frames of context each side)
PREPARE_VERSION = 1


def sinusoidal_positions(length: int, dim: int) -> np.ndarray:
    position = np.arange(length)[:, None]
    div = np.exp(np.arange(0, dim, 2) * (-math.log(10_000.0) / dim))
    table = np.zeros((length, dim), dtype=np.float32)
    table[:, 0::2] = np.sin(position * div)
    table[:, 1::2] = np.cos(position * div)
    return table


def frame_windows(hidden: np.ndarray, frames: int, fps: int) -> np.ndarray:
    """(positions, layers, dim) whisper states -> (frames, 10 * layers, dim) per-frame audio tokens."""
    per_frame = FEATURES_PER_SECOND / fps
    out = []
    for i in range(frames):
        centre = int(round(i * per_frame))
        index = np.clip(np.arange(centre - WINDOW_LEFT, centre + WINDOW_RIGHT), 0, hidden.shape[0] - 1)
        out.append(hidden[index].reshape(-1, hidden.shape[-1]))
    return np.stack(out) if out else np.zeros((0, WINDOW_LEFT + WINDOW_RIGHT, hidden.shape[-1]), dtype=np.float32)


@dataclass
class StageTimes:
    """Milliseconds spent per stage (accumulated), for `avatar bench face`."""

    ms: dict[str, float] = field(default_factory=lambda: dict.fromkeys(("whisper", "unet", "vae_decode", "paste"), 0.0))
    frames: int = 0

    def add(self, stage: str, started: float) -> None:
        self.ms[stage] += (time.perf_counter() - started) * 1000

    def per_frame(self) -> dict[str, float]:
        return {k: round(v / max(1, self.frames), 3) for k, v in self.ms.items()}


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
        batch_size: int = 8,
        fps: int = 25,
    ) -> None:
        self.models_dir = models_dir
        self.image_path = image_path
        self.width = width
        self.height = height
        self.device = device
        self.cache_dir = cache_dir
        self.batch_size = batch_size
        self.fps = fps
        self.name = f"musetalk:{device}"
        self.models: MuseTalkModels | None = None
        self.times = StageTimes()
        self.prepared_from_cache = False
        self._base: np.ndarray | None = None
        self._face: tuple[int, int, int, int] | None = None
        self._box: tuple[int, int, int, int] | None = None  # crop box in the frame: x0, y0, x1, y1
        self._mask: np.ndarray | None = None
        self._latents: Any = None  # (1, 8, h, w): masked + reference
        self._features: deque[np.ndarray] = deque()
        self._carry = np.zeros(0, dtype=np.int16)
        self._ready: deque[np.ndarray] = deque()  # rendered speaking frames, in order
        self._lock = threading.Lock()

    # -- preparation ------------------------------------------------------------------------------------

    def prepare(self) -> None:
        import torch

        if self._latents is not None:
            return
        self.models = self.models or load_models(self.models_dir, self.device)
        image = load_image(self.image_path)
        key = hashlib.sha256(image.tobytes() + f"{PREPARE_VERSION}:{self.width}x{self.height}".encode()).hexdigest()[
            :32
        ]
        cached = self.cache_dir / f"musetalk-{key}.npz" if self.cache_dir else None
        if cached is not None and cached.is_file():
            with np.load(cached) as data:
                self._base, latents = data["base"], data["latents"]
                self._box = tuple(int(v) for v in data["box"])  # type: ignore[assignment]
                self._face = tuple(int(v) for v in data["face"])  # type: ignore[assignment]
            self.prepared_from_cache = True
        else:
            self._base, geometry = prepare_portrait(image, self.width, self.height)
            self._face = geometry.face
            self._box = self._crop_box(geometry.face)
            latents = self._encode_latents(self._base, self._box)
            if cached is not None:
                cached.parent.mkdir(parents=True, exist_ok=True)
                tmp = cached.with_suffix(".tmp.npz")
                np.savez(tmp, base=self._base, latents=latents, box=np.array(self._box), face=np.array(self._face))
                tmp.replace(cached)
        models = self.models
        assert self._box is not None and self._face is not None
        self._latents = torch.from_numpy(latents).to(models.device, models.dtype)
        self._mask = self._blend_mask(self._box, self._face)
        logger.info("MuseTalk face prepared (%s)", "cache" if self.prepared_from_cache else "encoded")

    def _crop_box(self, face: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        x, y, w, h = face
        side = int(max(w, h) * 1.15)
        cx, cy = x + w / 2, y + h / 2 + h * 0.08  # a little extra chin, as MuseTalk 1.5 does
        x0 = int(min(max(0, cx - side / 2), self.width - side))
        y0 = int(min(max(0, cy - side / 2), self.height - side))
        return x0, y0, x0 + side, y0 + side

    def _encode_latents(self, base: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        import torch

        assert self.models is not None
        x0, y0, x1, y1 = box
        crop = cv2.resize(base[y0:y1, x0:x1], (CROP, CROP), interpolation=cv2.INTER_AREA)
        masked = crop.copy()
        masked[CROP // 2 :] = 0  # the lower half is what the UNet paints
        batch = torch.from_numpy(np.stack([masked, crop])).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        vae = self.models.vae
        with torch.inference_mode():
            latents = (
                vae.encode(batch.to(self.models.device, self.models.dtype)).latent_dist.mean * self.models.latent_scale
            )
        masked_latent, reference_latent = latents[0:1], latents[1:2]
        return torch.cat([masked_latent, reference_latent], dim=1).float().cpu().numpy()

    def _blend_mask(self, box: tuple[int, int, int, int], face: tuple[int, int, int, int]) -> np.ndarray:
        """Feathered mask over the lower face (mouth, cheeks, chin) inside the crop, from the face landmarks."""
        x0, y0, x1, y1 = box
        fx, fy, fw, fh = face
        side = x1 - x0
        mask = np.zeros((side, side), dtype=np.float32)
        centre = (int(fx + fw / 2 - x0), int(fy + fh * 0.72 - y0))
        cv2.ellipse(mask, centre, (int(fw * 0.36), int(fh * 0.3)), 0, 0, 360, 1.0, -1, lineType=cv2.LINE_AA)
        return cv2.GaussianBlur(mask, (0, 0), side * 0.04)[..., None]

    # -- audio ------------------------------------------------------------------------------------------

    def observe_speech(self, samples: np.ndarray) -> None:
        """A clause's 48 kHz audio, before it is played: its per-frame audio tokens are computed now."""
        import torch
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
        started = time.perf_counter()
        inputs = self.models.feature_extractor(clip, sampling_rate=WHISPER_RATE, return_tensors="pt").input_features
        with torch.inference_mode():
            out = self.models.whisper_encoder(
                inputs.to(self.models.device, self.models.dtype), output_hidden_states=True
            )
        hidden = torch.stack(out.hidden_states, dim=2)[0].float().cpu().numpy()  # (positions, layers, dim)
        windows = frame_windows(hidden, frames, self.fps)
        windows = windows + sinusoidal_positions(windows.shape[1], windows.shape[2])[None]
        self.times.add("whisper", started)
        with self._lock:
            self._features.extend(windows.astype(np.float32))

    def reset_speech(self) -> None:
        with self._lock:
            self._features.clear()
            self._ready.clear()
            self._carry = np.zeros(0, dtype=np.int16)

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
                if not self._ready and self._features:
                    batch = [self._features.popleft() for _ in range(min(self.batch_size, len(self._features)))]
                    self._ready.extend(self.render_batch(np.stack(batch)))
                frame = self._ready.popleft() if self._ready else None
        if frame is None:
            frame = self._base.copy()
        return apply_head_motion(frame, slot.pts_s, self._face)


def require_face(image: np.ndarray) -> None:
    if not detect_faces(image):
        raise FaceError("no frontal face found in the image")
