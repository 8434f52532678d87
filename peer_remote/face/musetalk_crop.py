"""Where MuseTalk's 256x256 face crop comes from in a frame: upstream's landmark box, or a Haar box on the CPU.

The UNet was trained on crops cut by TMElyralab/MuseTalk musetalk/utils/preprocessing.py ``get_landmark_and_bbox``
(jaw-to-jaw width, top mirrored about the nose, bottom at the chin) plus v1.5's ``extra_margin`` below the chin
(scripts/realtime_inference.py ``Avatar.prepare_material``, scripts/inference.py), then resized to 256x256
whatever the box's aspect ratio.
"""

from __future__ import annotations

import cv2
import numpy as np

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in frame pixels (x1, y1 exclusive, as numpy slices)

EXTRA_MARGIN = 10  # scripts/realtime_inference.py and scripts/inference.py: --extra_margin default (v15)
NOSE = 29  # preprocessing.get_landmark_and_bbox: half_face_coord = face_land_mark[29]
UPPER_BOUNDARY_RATIO = 0.5  # musetalk/utils/blending.py get_image_prepare_material: only the lower half talks
BLEND_EXPAND = 1.5  # blending.get_crop_box: the mask is built on the face box grown 1.5x


def landmark_crop_box(
    landmarks: np.ndarray, frame_height: int, frame_width: int, bbox_shift: int = 0, extra_margin: int = EXTRA_MARGIN
) -> Box | None:
    """Upstream's crop from 68 face landmarks (x, y), or None where upstream falls back to its detector's box.

    Written from musetalk/utils/preprocessing.py ``get_landmark_and_bbox`` (lines 100-132 on main):
    the landmarks are truncated to int32; the top is the nose point (index 29, moved down by ``bbox_shift``,
    which v1.5 fixes at 0) minus the nose-to-chin distance, floored at 0; left/right/bottom are the landmarks'
    min x / max x / max y; a box with no height or width or a negative left edge is refused. Then v1.5 adds
    ``extra_margin`` below the chin, capped at the frame height (scripts/realtime_inference.py lines 175-178).
    Unlike upstream, the right edge is also capped at the frame width (numpy would cut it silently).
    """
    points = np.asarray(landmarks)
    if points.shape != (68, 2):
        raise ValueError(f"expected 68 (x, y) face landmarks, got an array of shape {points.shape}")
    points = points.astype(np.int32)
    nose_y = int(points[NOSE, 1]) + bbox_shift
    chin_y = int(points[:, 1].max())
    top = max(0, nose_y - (chin_y - nose_y))
    x0, y0, x1, y1 = int(points[:, 0].min()), top, int(points[:, 0].max()), chin_y
    if y1 - y0 <= 0 or x1 - x0 <= 0 or x0 < 0:
        return None
    return x0, y0, min(x1, frame_width), min(y1 + extra_margin, frame_height)


def haar_crop_box(face: tuple[int, int, int, int], frame_width: int, frame_height: int) -> Box:
    """The CPU fallback (no landmark model): a square 1.15x Haar face box moved down a little for the chin."""
    x, y, w, h = face
    side = min(int(max(w, h) * 1.15), frame_width, frame_height)
    cx, cy = x + w / 2, y + h / 2 + h * 0.08
    x0 = int(min(max(0, cx - side / 2), frame_width - side))
    y0 = int(min(max(0, cy - side / 2), frame_height - side))
    return x0, y0, x0 + side, y0 + side


def landmark_blend_mask(box: Box, landmarks: np.ndarray) -> np.ndarray:
    """(h, w, 1) float mask over the lower half of the face inside the crop, feathered like upstream's.

    Upstream (musetalk/utils/blending.py ``get_image_prepare_material``) parses the face with BiSeNet on the box
    grown 1.5x, keeps the part below the box's middle row and blurs it with a kernel of 0.1x the grown box's side.
    Here the face region is the landmarks' convex hull (no BiSeNet on the box); the rest follows upstream.
    """
    x0, y0, x1, y1 = box
    width, height = x1 - x0, y1 - y0
    mask = np.zeros((height, width), dtype=np.float32)
    hull = cv2.convexHull((np.asarray(landmarks) - [x0, y0]).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1.0, lineType=cv2.LINE_AA)
    mask[: int(height * UPPER_BOUNDARY_RATIO)] = 0
    return _feather(mask, box)


def ellipse_blend_mask(box: Box, face: tuple[int, int, int, int]) -> np.ndarray:
    """(h, w, 1) float mask over mouth, cheeks and chin from a Haar face box (the CPU fallback)."""
    x0, y0, x1, y1 = box
    fx, fy, fw, fh = face
    mask = np.zeros((y1 - y0, x1 - x0), dtype=np.float32)
    centre = (int(fx + fw / 2 - x0), int(fy + fh * 0.72 - y0))
    cv2.ellipse(mask, centre, (int(fw * 0.36), int(fh * 0.3)), 0, 0, 360, 1.0, -1, lineType=cv2.LINE_AA)
    return _feather(mask, box)


def _feather(mask: np.ndarray, box: Box) -> np.ndarray:
    # blending.get_image_prepare_material: blur_kernel_size = int(0.1 * ori_shape[0] // 2 * 2) + 1, where
    # ori_shape[0] is the width of the 1.5x grown square (get_crop_box: 2 * int(max(w, h) // 2 * expand))
    x0, y0, x1, y1 = box
    grown = 2 * int(max(x1 - x0, y1 - y0) // 2 * BLEND_EXPAND)
    kernel = int(0.1 * grown // 2 * 2) + 1
    return cv2.GaussianBlur(mask, (kernel, kernel), 0)[..., None]
