"""A stand-in for DWPose's ONNX export (``dw-ll_ucoco_384.onnx``): an ONNX file onnxruntime runs, with the real
model's interface (one 1x3x384x288 float input; SimCC outputs of 133 keypoints, 576 x-bins and 768 y-bins, split
ratio 2: musetalk/utils/dwpose/rtmpose-l_8xb32-270e_coco-ubody-wholebody-384x288.py) that answers with fixed
keypoints. Written as raw ONNX protobuf (onnx/onnx.proto field numbers): the `onnx` package is not installed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from peer_remote.face.face_landmarks import FACE_KEYPOINTS, INPUT_SIZE, SIMCC_SPLIT_RATIO

KEYPOINTS = 133
FLOAT = 1  # TensorProto.DataType.FLOAT


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _int(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _bytes(field: int, value: bytes | str) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _value_info(name: str, shape: tuple[int, ...]) -> bytes:
    dims = b"".join(_bytes(1, _int(1, d)) for d in shape)  # TensorShapeProto.dim { dim_value }
    tensor_type = _int(1, FLOAT) + _bytes(2, dims)  # TypeProto.Tensor { elem_type, shape }
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor_type))  # ValueInfoProto { name, type { tensor_type } }


def _tensor(name: str, array: np.ndarray) -> bytes:
    dims = b"".join(_int(1, d) for d in array.shape)
    return dims + _int(2, FLOAT) + _bytes(8, name) + _bytes(9, array.astype("<f4").tobytes())


def _identity(source: str, target: str) -> bytes:
    return _bytes(1, source) + _bytes(2, target) + _bytes(3, f"copy_{target}") + _bytes(4, "Identity")


def simcc_for(keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SimCC maps (1, 133, 576), (1, 133, 768) peaking at ``keypoints`` (133, 2) given in network-input pixels."""
    simcc_x = np.zeros((1, KEYPOINTS, int(INPUT_SIZE[0] * SIMCC_SPLIT_RATIO)), dtype=np.float32)
    simcc_y = np.zeros((1, KEYPOINTS, int(INPUT_SIZE[1] * SIMCC_SPLIT_RATIO)), dtype=np.float32)
    bins = np.rint(keypoints * SIMCC_SPLIT_RATIO).astype(int)
    for k, (bx, by) in enumerate(bins):
        simcc_x[0, k, np.clip(bx, 0, simcc_x.shape[2] - 1)] = 0.9
        simcc_y[0, k, np.clip(by, 0, simcc_y.shape[2] - 1)] = 0.8
    return simcc_x, simcc_y


def write_dwpose_stand_in(path: Path, face_in_network: np.ndarray) -> Path:
    """An ONNX file whose answer puts the 68 face keypoints at ``face_in_network`` (network-input pixels)."""
    keypoints = np.full((KEYPOINTS, 2), 10.0, dtype=np.float32)
    keypoints[FACE_KEYPOINTS] = face_in_network
    simcc_x, simcc_y = simcc_for(keypoints)
    graph = (
        _bytes(1, _identity("answer_x", "simcc_x"))
        + _bytes(1, _identity("answer_y", "simcc_y"))
        + _bytes(2, "dwpose_stand_in")
        + _bytes(5, _tensor("answer_x", simcc_x))
        + _bytes(5, _tensor("answer_y", simcc_y))
        + _bytes(11, _value_info("input", (1, 3, INPUT_SIZE[1], INPUT_SIZE[0])))
        + _bytes(12, _value_info("simcc_x", simcc_x.shape))
        + _bytes(12, _value_info("simcc_y", simcc_y.shape))
    )
    model = _int(1, 8) + _bytes(7, graph) + _bytes(8, _bytes(1, "") + _int(2, 17))  # ir_version 8, opset 17
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model)
    return path
