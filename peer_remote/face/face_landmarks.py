"""68 face landmarks from DWPose, the whole-body pose model MuseTalk crops its faces from, run with onnxruntime.

Upstream (TMElyralab/MuseTalk, musetalk/utils/preprocessing.py) runs ``dw-ll_ucoco_384.pth`` through mmpose's
``inference_topdown`` on the whole frame and keeps keypoints 23..90, the 68 face points (iBUG layout: 0-16 jaw,
27-30 nose bridge, 48-67 mouth). The box runs the ONNX export of the same checkpoint (``yzd-v/DWPose``
``dw-ll_ucoco_384.onnx``) with mmpose's top-down pre- and post-processing, re-implemented here from
IDEA-Research/DWPose ``ControlNet-v1-1-nightly/annotator/dwpose/onnxpose.py`` (no mmcv/mmpose on the box).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np

logger = logging.getLogger(__name__)

DWPOSE_FILE = "dwpose/dw-ll_ucoco_384.onnx"  # under the models directory (peer_remote/box/model_fetch.py)
INPUT_SIZE = (288, 384)  # (w, h): musetalk/utils/dwpose/rtmpose-l_8xb32-270e_coco-ubody-wholebody-384x288.py codec
SIMCC_SPLIT_RATIO = 2.0  # same config, codec.simcc_split_ratio
BBOX_PADDING = 1.25  # mmpose GetBBoxCenterScale's default padding (onnxpose.preprocess: padding=1.25)
# data_preprocessor of the same config (bgr_to_rgb=True: the network sees RGB)
MEAN = np.array([123.675, 116.28, 103.53], dtype=np.float32)
STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)
FACE_KEYPOINTS = slice(23, 91)  # preprocessing.get_landmark_and_bbox: keypoints[0][23:91]


def bbox_center_scale(
    box: tuple[float, float, float, float], padding: float = BBOX_PADDING
) -> tuple[np.ndarray, np.ndarray]:
    """(x0, y0, x1, y1) -> centre (x, y) and padded scale (w, h) (onnxpose.bbox_xyxy2cs)."""
    x0, y0, x1, y1 = box
    return np.array([(x0 + x1) / 2, (y0 + y1) / 2]), np.array([x1 - x0, y1 - y0]) * padding


def fix_aspect_ratio(scale: np.ndarray, aspect: float) -> np.ndarray:
    """Grow (w, h) to the network's w/h ratio (onnxpose._fix_aspect_ratio)."""
    w, h = float(scale[0]), float(scale[1])
    return np.array([w, w / aspect]) if w > h * aspect else np.array([h * aspect, h])


def warp_matrix(center: np.ndarray, scale: np.ndarray, size: tuple[int, int] = INPUT_SIZE) -> np.ndarray:
    """The 2x3 affine map of the (aspect-fixed) box onto the network input, rotation 0 (onnxpose.get_warp_matrix)."""
    factor = size[0] / scale[0]
    return np.array(
        [[factor, 0.0, size[0] / 2 - factor * center[0]], [0.0, factor, size[1] / 2 - factor * center[1]]],
        dtype=np.float32,
    )


def simcc_decode(simcc_x: np.ndarray, simcc_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, K, Wx), (N, K, Wy) -> keypoints (N, K, 2) in input pixels and scores (N, K) (onnxpose.decode)."""
    n, k, _ = simcc_x.shape
    flat_x, flat_y = simcc_x.reshape(n * k, -1), simcc_y.reshape(n * k, -1)
    locs = np.stack([flat_x.argmax(1), flat_y.argmax(1)], axis=-1).astype(np.float32)
    scores = np.minimum(flat_x.max(1), flat_y.max(1))
    locs[scores <= 0] = -1
    return locs.reshape(n, k, 2) / SIMCC_SPLIT_RATIO, scores.reshape(n, k)


def network_input(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The whole image as the person box (mmpose inference_topdown with no boxes): (1, 3, h, w) input, centre, scale."""
    height, width = rgb.shape[:2]
    center, scale = bbox_center_scale((0, 0, width, height))
    scale = fix_aspect_ratio(scale, INPUT_SIZE[0] / INPUT_SIZE[1])
    warped = cv2.warpAffine(rgb, warp_matrix(center, scale), INPUT_SIZE, flags=cv2.INTER_LINEAR)
    normalised = (warped.astype(np.float32) - MEAN) / STD
    return normalised.transpose(2, 0, 1)[None], center, scale


def to_image(keypoints: np.ndarray, center: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Network-input pixels -> image pixels (onnxpose.postprocess)."""
    return keypoints / np.array(INPUT_SIZE) * scale + center - scale / 2


class DWPoseFaceLandmarks:
    """The 68 face points of the one person in an RGB image, from DWPose's ONNX export (CPU is enough: once a photo)."""

    def __init__(self, model_path: Path) -> None:
        import onnxruntime

        self.model_path = model_path
        self._session: Any = onnxruntime.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        tensor, center, scale = network_input(rgb)
        inputs = {self._session.get_inputs()[0].name: tensor}
        simcc_x, simcc_y = self._session.run(None, inputs)[:2]
        keypoints, scores = simcc_decode(simcc_x, simcc_y)
        face = to_image(keypoints[0], center, scale)[FACE_KEYPOINTS]
        logger.debug("DWPose face landmarks: mean score %.2f", float(scores[0][FACE_KEYPOINTS].mean()))
        return face.astype(np.float32)


def load_face_landmarks(models_dir: Path) -> DWPoseFaceLandmarks | None:
    """DWPose when its ONNX file is in the models directory, else None (the caller falls back to the Haar box)."""
    path = models_dir / DWPOSE_FILE
    if not path.is_file():
        return None
    return DWPoseFaceLandmarks(path)
