"""The CPU talking portrait: one photo, a Haar-cascade face/eyes/mouth fit, then per frame a smooth jaw
and lip warp driven by the audio (energy and a few viseme classes from the spectrum), blinks, and small
head and breathing motion. About 3 ms a 512x512 frame on one core."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from media.frames import AUDIO_RATE, FrameSlot
from media.profile.face_geometry import FaceGeometry, load_image, prepare_portrait

logger = logging.getLogger(__name__)

PREPARE_VERSION = 2


class MouthDriver:
    """Audio -> mouth opening and shape, smoothed like a jaw (opens fast, closes a little slower)."""

    def __init__(self) -> None:
        self.open = 0.0
        self.width = 1.0
        self._window = np.hanning(1024).astype(np.float32)
        self._freqs = np.fft.rfftfreq(1024, 1 / AUDIO_RATE)

    def reset(self) -> None:
        self.open, self.width = 0.0, 1.0

    def update(self, audio: np.ndarray) -> tuple[float, float]:
        samples = audio.astype(np.float32) / 32768.0
        rms = float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0
        level_db = 20 * math.log10(max(rms, 1e-5))
        target_open = float(np.clip((level_db + 48) / 30, 0.0, 1.0))
        target_width = 1.0
        if target_open > 0.05 and samples.size >= 1024:
            # the shape from the frame's last 21 ms: the sound the mouth is moving toward as the frame ends (from
            # its first ms, a fricative before a vowel kept the mouth shut a frame too long: lips 20 ms late)
            spectrum = np.abs(np.fft.rfft(samples[-1024:] * self._window))
            total = float(spectrum.sum()) + 1e-9
            low = float(spectrum[(self._freqs > 200) & (self._freqs < 900)].sum()) / total
            high = float(spectrum[self._freqs > 3500].sum()) / total
            if high > 0.35:  # fricatives (s, f, sh): teeth close, lips spread a little
                target_open *= 0.35
                target_width = 1.08
            elif low > 0.55:  # rounded vowels (o, u): narrower, rounder
                target_width = 0.86
            elif high < 0.1:  # open vowels (a): wide open
                target_open = min(1.0, target_open * 1.15)
            else:  # spread vowels (e, i)
                target_width = 1.1
                target_open *= 0.8
        rate = 0.9 if target_open > self.open else 0.6  # slower made the lips trail the voice (bench sync)
        self.open += (target_open - self.open) * rate
        self.width += (target_width - self.width) * 0.5
        return self.open, self.width


class PortraitAnimator:
    """The default :class:`~peer_remote.face.base.FaceAnimator`: a living portrait on the CPU."""

    def __init__(
        self,
        image_path: Path | None = None,
        width: int = 512,
        height: int = 512,
        cache_dir: Path | None = None,
        seed: int = 1,
        head_motion: bool = True,
    ) -> None:
        self.head_motion = head_motion
        self.needs_speech_ahead = False
        self.image_path = image_path
        self.width = width
        self.height = height
        self.cache_dir = cache_dir
        self.name = f"portrait:{image_path.name if image_path else 'astronaut'}"
        self.mouth = MouthDriver()
        self.prepared_from_cache = False
        self._rng = np.random.default_rng(seed)
        self._next_blink = 1.5
        self._base: np.ndarray | None = None
        self.geometry: FaceGeometry | None = None

    # -- preparation ------------------------------------------------------------------------------------

    def _cache_key(self, raw: bytes) -> str:
        digest = hashlib.sha256(raw)
        digest.update(f"{PREPARE_VERSION}:{self.width}x{self.height}".encode())
        return digest.hexdigest()[:32]

    def prepare(self) -> None:
        if self._base is not None:
            return
        image = load_image(self.image_path)
        key = self._cache_key(image.tobytes())
        cached = self.cache_dir / f"portrait-{key}.npz" if self.cache_dir else None
        if cached is not None and cached.is_file():
            with np.load(cached) as data:
                self._base = data["portrait"]
                self.geometry = FaceGeometry(**{k: tuple(v) for k, v in json.loads(str(data["geometry"])).items()})
            self.prepared_from_cache = True
        else:
            self._base, self.geometry = prepare_portrait(image, self.width, self.height)
            if cached is not None:
                cached.parent.mkdir(parents=True, exist_ok=True)
                tmp = cached.with_suffix(".tmp.npz")
                np.savez(tmp, portrait=self._base, geometry=json.dumps(asdict(self.geometry)))
                tmp.replace(cached)
        self._build()
        logger.info(
            "portrait prepared (%s): face %s", "cache" if self.prepared_from_cache else "detected", self.geometry.face
        )

    def _build(self) -> None:
        assert self.geometry is not None and self._base is not None
        fx, fy, fw, fh = self.geometry.face
        mx, my, mw, mh = self.geometry.mouth
        self._mouth_center = (mx + mw / 2, self._lip_line())
        self._mouth_half_w = mw / 2
        self._max_open = fh * 0.11
        # the region the jaw warp touches: from above the upper lip to below the chin
        x0, x1 = int(max(0, fx - fw * 0.05)), int(min(self.width, fx + fw * 1.05))
        y0, y1 = int(max(0, my - fh * 0.12)), int(min(self.height, fy + fh * 1.25))
        self._roi = (x0, y0, x1, y1)
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        self._grid = (xs, ys)
        cx, cy = self._mouth_center
        across = np.exp(-(((xs - cx) / (fw * 0.42)) ** 2))  # strongest under the mouth, fading to the cheeks
        below = np.clip((ys - cy) / (fh * 0.03) + 0.5, 0, 1)  # the jaw moves from the lip line down
        fade = np.clip((y1 - ys) / (fh * 0.25), 0, 1)  # nothing moves at the region's bottom edge
        edges = np.clip((xs - x0) / (fw * 0.1), 0, 1) * np.clip((x1 - xs) / (fw * 0.1), 0, 1)
        self._jaw_weight = (across * below * fade * edges).astype(np.float32)
        above = np.clip((cy - ys) / (fh * 0.08), 0, 1) * np.clip((ys - y0) / (fh * 0.05), 0, 1)
        self._lip_weight = (across * above * (1 - above) * 4 * edges).astype(np.float32)
        skin_patch = self._base[int(fy + fh * 0.55) : int(fy + fh * 0.65), int(fx + fw * 0.2) : int(fx + fw * 0.3)]
        self._skin = skin_patch.reshape(-1, 3).mean(axis=0) if skin_patch.size else np.array([180, 140, 120])

    def _lip_line(self) -> float:
        """The row where the lips part: the middle of visible teeth, else the darkest row of the mouth box."""
        assert self.geometry is not None and self._base is not None
        mx, my, mw, mh = self.geometry.mouth
        box = self._base[my : my + mh, mx + mw // 4 : mx + 3 * mw // 4].astype(np.float32)
        if not box.size:
            return my + mh * 0.5
        luma = box @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        chroma = box.max(axis=2) - box.min(axis=2)
        teeth = ((luma > 165) & (chroma < 60)).mean(axis=1) > 0.25
        if teeth.any():
            rows = np.flatnonzero(teeth)
            return float(my + (rows[0] + rows[-1]) / 2)
        profile = luma.mean(axis=1)
        return float(my + int(np.argmin(profile[mh // 5 : mh - mh // 5])) + mh // 5)

    # -- rendering ---------------------------------------------------------------------------------------

    def reset_speech(self) -> None:
        self.mouth.reset()

    def observe_speech(self, samples: np.ndarray) -> None:
        """Not needed: the mouth follows each slot's own audio."""

    def with_portrait(self, image_path: Path | None) -> PortraitAnimator:
        return PortraitAnimator(image_path, self.width, self.height, self.cache_dir, head_motion=self.head_motion)

    def render(self, slot: FrameSlot, audio: np.ndarray, speaking: bool) -> np.ndarray:
        self.prepare()
        assert self._base is not None
        t = slot.pts_s
        opening, width = self.mouth.update(audio if speaking else np.zeros(0, dtype=np.int16))
        frame = self._base.copy()
        if opening > 0.02:
            self._open_mouth(frame, opening, width)
        blink = self._blink_amount(t)
        if blink > 0.02:
            self._close_eyes(frame, blink)
        assert self.geometry is not None
        return apply_head_motion(frame, t, self.geometry.face, opening) if self.head_motion else frame

    def _open_mouth(self, frame: np.ndarray, opening: float, width: float) -> None:
        assert self._base is not None
        x0, y0, x1, y1 = self._roi
        xs, ys = self._grid
        drop = float(opening * self._max_open)
        width = float(width)
        cx, cy = self._mouth_center
        squeeze = (1 - width) * (xs - cx) * 0.35 * self._jaw_weight
        map_x = (xs + squeeze).astype(np.float32, copy=False)
        map_y = (ys - drop * self._jaw_weight + drop * 0.25 * self._lip_weight).astype(np.float32, copy=False)
        region = cv2.remap(self._base, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        # the mouth's inside shows in the gap the jaw opened
        mask = np.zeros(region.shape[:2], dtype=np.float32)
        center = (int(round(cx - x0)), int(round(cy - y0 + drop * 0.55)))
        axes = (max(1, int(self._mouth_half_w * width * 0.62)), max(1, int(drop * 0.45)))
        cv2.ellipse(mask, center, axes, 0, 0, 360, 1.0, -1, lineType=cv2.LINE_AA)
        mask = cv2.GaussianBlur(mask, (0, 0), max(0.8, drop * 0.08))[..., None]
        inside = np.empty_like(region, dtype=np.float32)
        inside[:] = (74, 28, 32)
        frame[y0:y1, x0:x1] = (region * (1 - mask) + inside * mask).astype(np.uint8)

    def _blink_amount(self, t: float) -> float:
        if t >= self._next_blink + 0.2:
            self._next_blink = t + float(self._rng.uniform(2.0, 5.5))
        phase = t - self._next_blink
        if 0 <= phase < 0.2:
            return float(math.sin(math.pi * phase / 0.2))
        return 0.0

    def _close_eyes(self, frame: np.ndarray, amount: float) -> None:
        """Draw the upper lid down over the eye: skin from above the eye is pulled down (no flat patches)."""
        assert self.geometry is not None
        for ex, ey, ew, eh in (self.geometry.left_eye, self.geometry.right_eye):
            x0, y0 = max(0, ex - ew // 4), max(0, ey - eh // 2)
            x1, y1 = min(self.width, ex + ew + ew // 4), min(self.height, ey + eh + eh // 4)
            ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
            cx, cy = ex + ew / 2, ey + eh * 0.55
            across = np.clip(1 - ((xs - cx) / (ew * 0.62)) ** 2, 0, 1)
            down = np.clip(1 - np.abs(ys - cy) / (eh * 0.55), 0, 1)
            pull = amount * eh * 0.34 * across * down
            patch = cv2.remap(
                frame, xs, (ys - pull).astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
            )
            frame[y0:y1, x0:x1] = patch


def apply_head_motion(frame: np.ndarray, t: float, face: tuple[int, int, int, int], opening: float = 0.0) -> np.ndarray:
    """Small sway, tilt and breathing (and a slight nod with speech), pivoting at the chin; edges reflect,
    so no border ever shows."""
    fx, fy, fw, fh = face
    height, width = frame.shape[:2]
    dx = 1.6 * math.sin(2 * math.pi * 0.11 * t) + 0.8 * math.sin(2 * math.pi * 0.23 * t + 1.0)
    dy = 1.0 * math.sin(2 * math.pi * 0.25 * t) + 1.2 * opening
    angle = 0.7 * math.sin(2 * math.pi * 0.07 * t + 0.5)
    matrix = cv2.getRotationMatrix2D((fx + fw / 2, fy + fh), angle, 1.0 + 0.004 * math.sin(2 * math.pi * 0.25 * t))
    matrix[:, 2] += np.array([dx, dy])
    return cv2.warpAffine(frame, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
