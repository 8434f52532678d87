"""Face geometry of a portrait photo: the face and its eyes and mouth (OpenCV's Haar cascades), and the
head-and-shoulders crop both enrolment (the laptop) and the face backends (the box) make from it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

FACE_FILL = 0.38  # the face box takes this share of the frame width


class FaceError(RuntimeError):
    """No usable face in the image, or the face model is missing."""


def default_portrait() -> np.ndarray:
    """scikit-image's public-domain ``astronaut`` photo (Eileen Collins, NASA), shipped in the package."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


def load_image(path: Path | None) -> np.ndarray:
    if path is None:
        return default_portrait()
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FaceError(f"cannot read an image from {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@dataclass(frozen=True)
class FaceGeometry:
    """Where things are in the prepared (cropped, resized) portrait, in pixels."""

    face: tuple[int, int, int, int]  # x, y, w, h
    left_eye: tuple[int, int, int, int]
    right_eye: tuple[int, int, int, int]
    mouth: tuple[int, int, int, int]


def _cascade(name: str) -> cv2.CascadeClassifier:
    classifier = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / name))  # type: ignore[attr-defined]
    if classifier.empty():
        raise FaceError(f"OpenCV's {name} is missing (opencv-python-headless < 5 ships it)")
    return classifier


def detect_faces(rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Frontal faces, largest first."""
    gray = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    side = min(gray.shape[:2])
    found = _cascade("haarcascade_frontalface_default.xml").detectMultiScale(
        gray, scaleFactor=1.1, minNeighbors=6, minSize=(max(40, side // 12),) * 2
    )
    return sorted((tuple(int(v) for v in f) for f in found), key=lambda f: -f[2] * f[3])  # type: ignore[misc]


def _fit_features(rgb: np.ndarray, face: tuple[int, int, int, int]) -> FaceGeometry:
    x, y, w, h = face
    gray = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    eye_w = int(w * 0.26)
    left = (x + int(w * 0.17), y + int(h * 0.28), eye_w, int(h * 0.2))
    right = (x + int(w * 0.57), y + int(h * 0.28), eye_w, int(h * 0.2))
    eyes = _cascade("haarcascade_eye.xml").detectMultiScale(
        gray[y : y + h // 2 + h // 10, x : x + w], 1.1, 5, minSize=(w // 8,) * 2
    )
    if len(eyes) >= 2:
        best = sorted(eyes, key=lambda e: -e[2])[:2]
        (ax, ay, aw, ah), (bx, by, bw, bh) = sorted(best, key=lambda e: e[0])
        left, right = (x + ax, y + ay, aw, ah), (x + bx, y + by, bw, bh)
    mouth = (x + int(w * 0.27), y + int(h * 0.7), int(w * 0.46), int(h * 0.17))
    smiles = _cascade("haarcascade_smile.xml").detectMultiScale(
        gray[y + h // 2 : y + h, x : x + w], 1.5, 15, minSize=(w // 5, h // 12)
    )
    if len(smiles):
        sx, sy, sw, sh = max(smiles, key=lambda s: s[2])
        if 0.3 * w <= sw <= 0.75 * w:
            mouth = (x + sx, y + h // 2 + sy, sw, sh)

    def ints(box: tuple[int, ...]) -> tuple[int, int, int, int]:
        a, b, c, d = (int(v) for v in box)
        return a, b, c, d

    return FaceGeometry(face=ints(face), left_eye=ints(left), right_eye=ints(right), mouth=ints(mouth))


def frame_geometry(rgb: np.ndarray) -> FaceGeometry:
    """The features of the largest face in a frame as it is (no crop): where a rendered face's mouth is."""
    faces = detect_faces(rgb)
    if not faces:
        raise FaceError("no frontal face found in the frame")
    return _fit_features(rgb, faces[0])


def prepare_portrait(rgb: np.ndarray, width: int, height: int) -> tuple[np.ndarray, FaceGeometry]:
    """Crop head-and-shoulders around the one face, resize to ``width`` x ``height``, fit the features."""
    faces = detect_faces(rgb)
    if not faces:
        raise FaceError("no frontal face found in the image: use a well-lit, front-facing photo")
    x, y, w, h = faces[0]
    side = int(max(w, h) / FACE_FILL)
    cx, cy = x + w / 2, y + h * 0.62
    aspect = width / height
    crop_w, crop_h = side, int(side / aspect)
    scale = min(1.0, rgb.shape[1] / crop_w, rgb.shape[0] / crop_h)
    crop_w, crop_h = int(crop_w * scale), int(crop_h * scale)
    left = int(min(max(0, cx - crop_w / 2), rgb.shape[1] - crop_w))
    top = int(min(max(0, cy - crop_h / 2), rgb.shape[0] - crop_h))
    crop = rgb[top : top + crop_h, left : left + crop_w]
    portrait = cv2.resize(crop, (width, height), interpolation=cv2.INTER_LANCZOS4 if crop_w < width else cv2.INTER_AREA)
    fx, fy = width / crop_w, height / crop_h
    placed = (int((x - left) * fx), int((y - top) * fy), int(w * fx), int(h * fy))
    return portrait, _fit_features(portrait, placed)
