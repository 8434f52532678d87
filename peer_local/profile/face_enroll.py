"""``avatar enroll face``: one frontal, well-lit face of usable size, cropped head-and-shoulders and saved;
for a video, a short clip of a neutral, closed-mouth stretch is kept as well (MuseTalk prepares from it)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from media.profile.face_geometry import detect_faces, prepare_portrait
from peer_local.profile.store import Profile
from peer_local.profile.voice_enroll import EnrollmentError

logger = logging.getLogger(__name__)

MIN_FACE_PX = 80  # the bundled 512x512 portrait has a 93 px face
DARK, BRIGHT, FLAT = 50.0, 215.0, 18.0
CLIP_S = 3.0
PORTRAIT_SIZE = 512


@dataclass(frozen=True)
class FaceReport:
    face_px: int
    brightness: float
    contrast: float
    clip_s: float | None = None
    clip_start_s: float | None = None


def read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise EnrollmentError(f"{path}: not an image OpenCV can read")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def check_face_image(rgb: np.ndarray, where: str = "the picture") -> FaceReport:
    """One frontal face, big enough, well lit; :class:`EnrollmentError` says what is wrong."""
    faces = detect_faces(rgb)
    if not faces:
        raise EnrollmentError(f"{where}: no frontal face found; face the camera in good light")
    if len(faces) > 1:
        raise EnrollmentError(f"{where}: {len(faces)} faces found; the picture must show only you")
    x, y, w, h = faces[0]
    if w < MIN_FACE_PX:
        raise EnrollmentError(
            f"{where}: the face is {w} px wide (need {MIN_FACE_PX}); move closer or use a larger picture"
        )
    gray = cv2.cvtColor(rgb[y : y + h, x : x + w], cv2.COLOR_RGB2GRAY).astype(np.float32)
    brightness, contrast = float(gray.mean()), float(gray.std())
    if brightness < DARK:
        raise EnrollmentError(
            f"{where}: the face is too dark (brightness {brightness:.0f} of 255); add light in front of you"
        )
    if brightness > BRIGHT:
        raise EnrollmentError(
            f"{where}: the face is overexposed (brightness {brightness:.0f} of 255); reduce the light"
        )
    if contrast < FLAT:
        raise EnrollmentError(
            f"{where}: the face has too little contrast ({contrast:.0f}); it may be blurred or washed out"
        )
    return FaceReport(face_px=w, brightness=round(brightness, 1), contrast=round(contrast, 1))


def save_portrait(profile: Profile, rgb: np.ndarray) -> None:
    portrait, _ = prepare_portrait(rgb, PORTRAIT_SIZE, PORTRAIT_SIZE)
    cv2.imwrite(str(profile.file("face.png")), cv2.cvtColor(portrait, cv2.COLOR_RGB2BGR))


def enroll_face_image(profile: Profile, rgb: np.ndarray, where: str = "the picture") -> FaceReport:
    report = check_face_image(rgb, where)
    save_portrait(profile, rgb)
    profile.write_manifest()
    return report


def read_video(path: Path, max_s: float = 60.0) -> tuple[list[np.ndarray], float]:
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or 25)
            frames = []
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
                if len(frames) >= max_s * fps:
                    break
    except (av.error.FFmpegError, IndexError) as exc:
        raise EnrollmentError(f"{path}: not a readable video: {exc}") from exc
    return frames, fps


def mouth_motion(frames: list[np.ndarray], face: tuple[int, int, int, int]) -> np.ndarray:
    """Mean absolute change of the lower face between consecutive frames (talking moves it)."""
    x, y, w, h = face
    box = (slice(y + int(h * 0.62), y + h), slice(x + w // 5, x + w - w // 5))
    grays = [cv2.cvtColor(f[box], cv2.COLOR_RGB2GRAY).astype(np.float32) for f in frames]
    return np.array([0.0] + [float(np.abs(b - a).mean()) for a, b in zip(grays, grays[1:], strict=False)])


def pick_neutral_stretch(
    frames: list[np.ndarray], fps: float, clip_s: float = CLIP_S
) -> tuple[int, int, tuple[int, int, int, int]]:
    """(first, end) frame indices of the calmest ``clip_s`` stretch with exactly one face, and that face."""
    length = int(clip_s * fps)
    if len(frames) < length:
        raise EnrollmentError(f"the video is {len(frames) / fps:.1f} s long; record at least {clip_s:.0f} s")
    step = max(1, int(fps // 5))
    faces = {i: detect_faces(frames[i]) for i in range(0, len(frames), step)}
    single = {i: f[0] for i, f in faces.items() if len(f) == 1}
    if not single:
        most = max((len(f) for f in faces.values()), default=0)
        raise EnrollmentError(
            "the video shows no frontal face" if most == 0 else f"the video shows {most} faces; record only yourself"
        )
    reference = max(single.values(), key=lambda f: f[2])
    motion = mouth_motion(frames, reference)
    best: tuple[float, int] | None = None
    for start in range(0, len(frames) - length + 1, step):
        sampled = [i for i in range(start, start + length, step) if i in faces]
        if not sampled or any(i not in single for i in sampled):
            continue
        score = float(motion[start + 1 : start + length].mean())
        if best is None or score < best[0]:
            best = (score, start)
    if best is None:
        raise EnrollmentError(
            f"no {clip_s:.0f} s stretch shows exactly one face throughout; hold still facing the camera"
        )
    return best[1], best[1] + length, reference


def write_clip(path: Path, frames: list[np.ndarray], fps: float) -> None:
    import av

    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=int(round(fps)))
        stream.width, stream.height = width - width % 2, height - height % 2
        stream.pix_fmt = "yuv420p"
        for image in frames:
            frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(image[: stream.height, : stream.width]), format="rgb24"
            )
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def enroll_face_video(profile: Profile, path: Path) -> FaceReport:
    frames, fps = read_video(path)
    start, end, _ = pick_neutral_stretch(frames, fps)
    middle = frames[(start + end) // 2]
    report = check_face_image(middle, f"{path} at {((start + end) / 2) / fps:.1f} s")
    write_clip(profile.file("face.mp4"), frames[start:end], fps)
    save_portrait(profile, middle)
    profile.write_manifest()
    return FaceReport(
        report.face_px, report.brightness, report.contrast, round((end - start) / fps, 2), round(start / fps, 2)
    )


def capture_webcam(index: int, seconds: float = 3.0) -> np.ndarray:
    """The best frame of a few seconds of webcam: exactly one face, the sharpest."""
    capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        raise EnrollmentError(f"cannot open webcam {index}; check it is connected and not used by another app")
    best: tuple[float, np.ndarray] | None = None
    try:
        for _ in range(int(seconds * 15)):
            ok, bgr = capture.read()
            if not ok:
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            if len(detect_faces(rgb)) != 1:
                continue
            sharpness = float(cv2.Laplacian(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())
            if best is None or sharpness > best[0]:
                best = (sharpness, rgb)
    finally:
        capture.release()
    if best is None:
        raise EnrollmentError(f"webcam {index} never showed exactly one frontal face; face the camera in good light")
    return best[1]
