"""MuseTalk's face crop from landmarks, against upstream's formula (TMElyralab/MuseTalk main:
musetalk/utils/preprocessing.py get_landmark_and_bbox, scripts/realtime_inference.py prepare_material's
extra_margin), and DWPose's pre/post-processing (IDEA-Research/DWPose annotator/dwpose/onnxpose.py).

Guards issue 16 defect 8: the crop was a square 1.15x Haar box, unlike the crops the UNet was trained on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from peer_remote.face.face_landmarks import (
    DWPOSE_FILE,
    FACE_KEYPOINTS,
    INPUT_SIZE,
    bbox_center_scale,
    fix_aspect_ratio,
    load_face_landmarks,
    network_input,
    simcc_decode,
    to_image,
    warp_matrix,
)
from peer_remote.face.musetalk_crop import (
    EXTRA_MARGIN,
    haar_crop_box,
    landmark_blend_mask,
    landmark_crop_box,
)
from tests.dwpose_stand_in import write_dwpose_stand_in


def hand_made_face(
    left: float = 100, right: float = 300, nose_y: float = 250, chin_y: float = 400, brow_y: float = 180
) -> np.ndarray:
    """68 points in the iBUG layout of a frontal face: jaw 0-16 (a U from ear to ear through the chin), brows
    17-26, nose bridge 27-30 (29 at ``nose_y``), nostrils 31-35, eyes 36-47, mouth 48-67."""
    points = np.zeros((68, 2), dtype=np.float32)
    centre = (left + right) / 2
    angles = np.linspace(np.pi, 0, 17)  # ear (left) -> chin -> ear (right)
    points[0:17, 0] = centre + (right - left) / 2 * np.cos(angles)
    points[0:17, 1] = brow_y + 40 + (chin_y - brow_y - 40) * np.sin(angles)
    points[17:27] = np.stack([np.linspace(left + 20, right - 20, 10), np.full(10, brow_y)], axis=1)
    points[27:31] = np.stack([np.full(4, centre), np.linspace(nose_y - 60, nose_y + 20, 4)], axis=1)
    points[29, 1] = nose_y
    points[31:36] = np.stack([np.linspace(centre - 20, centre + 20, 5), np.full(5, nose_y + 30)], axis=1)
    points[36:48] = np.stack([np.linspace(left + 30, right - 30, 12), np.full(12, brow_y + 30)], axis=1)
    points[48:68] = np.stack([np.linspace(centre - 40, centre + 40, 20), np.full(20, nose_y + 70)], axis=1)
    return points


def upstream_box(landmarks: np.ndarray, frame_height: int) -> tuple[int, int, int, int]:
    """preprocessing.py lines 100-132 and realtime_inference.py lines 174-178, transcribed step by step."""
    face_land_mark = landmarks.astype(np.int32)
    half_face_coord = face_land_mark[29]
    half_face_dist = np.max(face_land_mark[:, 1]) - half_face_coord[1]
    upper_bond = max(0, half_face_coord[1] - half_face_dist)
    x1, y1, x2, y2 = (
        np.min(face_land_mark[:, 0]),
        int(upper_bond),
        np.max(face_land_mark[:, 0]),
        np.max(face_land_mark[:, 1]),
    )
    y2 = min(y2 + 10, frame_height)  # args.extra_margin default 10, v15
    return int(x1), int(y1), int(x2), int(y2)


def test_the_crop_spans_jaw_to_jaw_with_the_top_mirrored_about_the_nose_and_a_margin_below_the_chin() -> None:
    face = hand_made_face(left=100, right=300, nose_y=250, chin_y=400)
    box = landmark_crop_box(face, frame_height=512, frame_width=512)
    # left/right: the jaw's ends; top: 250 - (400 - 250) = 100; bottom: the chin + extra_margin (10)
    assert box == (100, 100, 300, 400 + EXTRA_MARGIN)
    assert box == upstream_box(face, 512)


def test_the_crop_is_not_squared_the_box_keeps_the_faces_proportions() -> None:
    narrow = hand_made_face(left=180, right=300, nose_y=250, chin_y=420)
    box = landmark_crop_box(narrow, frame_height=512, frame_width=512)
    assert box is not None and box == upstream_box(narrow, 512)
    x0, y0, x1, y1 = box
    assert (x1 - x0, y1 - y0) == (120, 350)  # resized to 256x256 later, squashed as upstream does


def test_landmarks_are_truncated_to_integers_as_upstream_does() -> None:
    face = hand_made_face(left=100.9, right=300.7, nose_y=250.8, chin_y=400.6)
    box = landmark_crop_box(face, frame_height=512, frame_width=512)
    assert box == upstream_box(face, 512) == (100, 100, 300, 410)


def test_the_top_is_floored_at_the_frame_edge_and_the_margin_capped_at_its_bottom() -> None:
    face = hand_made_face(left=100, right=300, nose_y=150, chin_y=505, brow_y=60)
    box = landmark_crop_box(face, frame_height=512, frame_width=512)
    assert box == upstream_box(face, 512) == (100, 0, 300, 512)


def test_a_box_upstream_refuses_falls_back() -> None:
    assert landmark_crop_box(hand_made_face(left=-5, right=200), 512, 512) is None  # x1 < 0
    flat = hand_made_face()
    flat[:, 1] = 250  # no height: chin at the nose
    assert landmark_crop_box(flat, 512, 512) is None
    with pytest.raises(ValueError, match="68"):
        landmark_crop_box(np.zeros((5, 2)), 512, 512)


def test_the_blend_mask_covers_the_lower_face_only() -> None:
    face = hand_made_face()
    box = landmark_crop_box(face, 512, 512)
    assert box is not None
    mask = landmark_blend_mask(box, face)[..., 0]
    x0, y0, x1, y1 = box
    assert mask.shape == (y1 - y0, x1 - x0)
    mouth = (face[48:68].mean(0) - [x0, y0]).astype(int)
    assert mask[mouth[1], mouth[0]] > 0.9  # the mouth is repainted
    # blending.get_image_prepare_material keeps the part below the middle row (then blurs: allow the feather)
    assert mask[: int(0.4 * (y1 - y0))].max() == 0


def test_the_haar_fallback_box_stays_inside_the_frame() -> None:
    assert haar_crop_box((400, 400, 150, 150), 512, 512) == (340, 340, 512, 512)
    x0, y0, x1, y1 = haar_crop_box((10, 10, 600, 600), 512, 512)
    assert (x0, y0) == (0, 0) and x1 <= 512 and y1 <= 512


def test_dwpose_input_is_the_whole_image_padded_to_the_networks_aspect() -> None:
    center, scale = bbox_center_scale((0, 0, 640, 480))
    assert center.tolist() == [320, 240] and scale.tolist() == [800, 600]  # padding 1.25
    fixed = fix_aspect_ratio(scale, INPUT_SIZE[0] / INPUT_SIZE[1])
    assert fixed.tolist() == [800, 800 / 0.75]  # wider than 288:384 -> height grows
    tensor, center, scale = network_input(np.zeros((480, 640, 3), dtype=np.uint8))
    assert tensor.shape == (1, 3, 384, 288) and tensor.dtype == np.float32
    # black pixels normalised with the RGB ImageNet mean/std of upstream's rtmpose config
    assert np.allclose(tensor[0, :, 192, 144], [-123.675 / 58.395, -116.28 / 57.12, -103.53 / 57.375])


def test_dwpose_keypoints_map_back_to_image_pixels() -> None:
    center, scale = bbox_center_scale((0, 0, 512, 512))
    scale = fix_aspect_ratio(scale, INPUT_SIZE[0] / INPUT_SIZE[1])
    matrix = warp_matrix(center, scale)
    point = np.array([200.0, 300.0])
    in_network = matrix[:, :2] @ point + matrix[:, 2]
    assert np.allclose(to_image(in_network[None], center, scale)[0], point, atol=1e-3)


def test_simcc_decoding_takes_each_axis_maximum_at_half_pixel_resolution() -> None:
    simcc_x = np.zeros((1, 133, INPUT_SIZE[0] * 2), dtype=np.float32)
    simcc_y = np.zeros((1, 133, INPUT_SIZE[1] * 2), dtype=np.float32)
    simcc_x[0, 30, 101], simcc_y[0, 30, 401] = 0.9, 0.8
    simcc_x[0, 31, 10] = 0.5  # no y response: score 0 -> "not found" (-1)
    keypoints, scores = simcc_decode(simcc_x, simcc_y)
    assert keypoints.shape == (1, 133, 2)
    assert keypoints[0, 30].tolist() == [50.5, 200.5] and scores[0, 30] == pytest.approx(0.8)
    assert keypoints[0, 31].tolist() == [-0.5, -0.5]  # -1 / split ratio, as onnxpose.decode does
    assert (FACE_KEYPOINTS.start, FACE_KEYPOINTS.stop) == (23, 91)  # keypoints[0][23:91]


def test_the_dwpose_runner_maps_the_models_answer_back_to_image_pixels(tmp_path: Path) -> None:
    image = np.full((512, 512, 3), 128, dtype=np.uint8)
    face = hand_made_face()
    center, scale = bbox_center_scale((0, 0, 512, 512))
    scale = fix_aspect_ratio(scale, INPUT_SIZE[0] / INPUT_SIZE[1])
    matrix = warp_matrix(center, scale)
    in_network = face @ matrix[:, :2].T + matrix[:, 2]
    assert load_face_landmarks(tmp_path) is None  # no model: the caller falls back to the Haar box
    write_dwpose_stand_in(tmp_path / DWPOSE_FILE, in_network)
    runner = load_face_landmarks(tmp_path)
    assert runner is not None
    found = runner(image)
    assert found.shape == (68, 2) and found.dtype == np.float32
    assert np.abs(found - face).max() < 1.5  # SimCC half-pixel bins, 2.2 image pixels per network pixel
    assert landmark_crop_box(found, 512, 512) == landmark_crop_box(face, 512, 512)
