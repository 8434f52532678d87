"""The CPU talking portrait: lips follow speech, stillness in silence, continuous idle motion, caching."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from media.clock import MediaClock
from media.frames import FrameSlot
from media.profile.face_geometry import default_portrait
from media.stream import AVStream
from peer_remote.avatar_producer import AvatarProducer
from peer_remote.face.base import FaceError
from peer_remote.face.portrait import PortraitAnimator

SPEECH = (np.sin(np.arange(1920) / 48_000 * 2 * np.pi * 250) * 12_000).astype(np.int16)
SILENCE = np.zeros(1920, dtype=np.int16)


@pytest.fixture
def animator(tmp_path: Path) -> PortraitAnimator:
    face = PortraitAnimator(cache_dir=tmp_path)
    face.prepare()
    return face


def regions(face: PortraitAnimator) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    assert face.geometry is not None
    mx, my, mw, mh = face.geometry.mouth
    fx, fy, fw, fh = face.geometry.face
    mouth = (slice(my - mh // 2, my + mh * 2), slice(mx, mx + mw))
    forehead = (slice(fy, fy + fh // 5), slice(fx + fw // 4, fx + 3 * fw // 4))
    return mouth, forehead


def test_the_mouth_moves_with_speech_and_little_else_does(tmp_path: Path) -> None:
    animator = PortraitAnimator(cache_dir=tmp_path, head_motion=False)  # compare like with like
    animator.prepare()
    mouth, forehead = regions(animator)
    # render the same instant with and without speech: only what speech changes differs
    idle = [animator.render(FrameSlot(i, 25), SILENCE, False) for i in range(10)]
    animator.reset_speech()
    talk = [animator.render(FrameSlot(i, 25), SPEECH, True) for i in range(10)]
    diff = np.abs(talk[-1].astype(int) - idle[-1].astype(int))
    assert diff[mouth].mean() > 10 * max(0.5, diff[forehead].mean())
    assert diff[mouth].mean() > 5


def test_the_mouth_stays_still_in_silence(animator: PortraitAnimator) -> None:
    mouth, _ = regions(animator)
    frames = [animator.render(FrameSlot(i, 25), SILENCE, False) for i in range(25)]
    base = PortraitAnimator(cache_dir=animator.cache_dir)
    base.prepare()
    assert base._base is not None
    # silence never opens the mouth: the mouth region differs from the photo only by the small head motion
    for frame in frames:
        assert np.abs(frame[mouth].astype(int) - base._base[mouth].astype(int)).mean() < 6


def test_idle_frames_are_continuous_with_blinks_and_motion(animator: PortraitAnimator) -> None:
    frames = [animator.render(FrameSlot(i, 25), SILENCE, False) for i in range(150)]  # 6 s
    steps = [np.abs(b.astype(int) - a.astype(int)).mean() for a, b in zip(frames, frames[1:], strict=False)]
    assert max(steps) < 8  # no jumps between consecutive frames
    assert np.abs(frames[0].astype(int) - frames[60].astype(int)).mean() > 0.3  # but it is alive
    assert animator.geometry is not None
    ex, ey, ew, eh = animator.geometry.left_eye
    eye = [f[ey : ey + eh, ex : ex + ew].astype(int) for f in frames]
    eye_change = [np.abs(e - eye[0]).mean() for e in eye]
    assert max(eye_change) > 3 * np.median(eye_change)  # at least one blink


def test_preparation_is_cached_by_content_hash(tmp_path: Path) -> None:
    first = PortraitAnimator(cache_dir=tmp_path)
    first.prepare()
    assert not first.prepared_from_cache and len(list(tmp_path.glob("portrait-*.npz"))) == 1
    second = PortraitAnimator(cache_dir=tmp_path)
    second.prepare()
    assert second.prepared_from_cache and second.geometry == first.geometry
    other = tmp_path / "flipped.png"
    cv2.imwrite(str(other), cv2.cvtColor(default_portrait()[:, ::-1], cv2.COLOR_RGB2BGR))
    third = PortraitAnimator(other, cache_dir=tmp_path)
    third.prepare()
    assert not third.prepared_from_cache and len(list(tmp_path.glob("portrait-*.npz"))) == 2


def test_an_image_without_a_face_is_a_clear_error(tmp_path: Path) -> None:
    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((400, 400, 3), 128, dtype=np.uint8))
    with pytest.raises(FaceError, match="no frontal face"):
        PortraitAnimator(blank, cache_dir=tmp_path).prepare()
    with pytest.raises(FaceError, match="cannot read"):
        PortraitAnimator(tmp_path / "missing.png", cache_dir=tmp_path).prepare()


async def test_frames_and_their_audio_stay_paired_through_the_producer(tmp_path: Path) -> None:
    face = PortraitAnimator(width=256, height=256, cache_dir=tmp_path)
    producer = AvatarProducer(face)
    stream = AVStream(producer, MediaClock(), fps=25)
    # 1 s of speech: frame count = duration x fps, and each speaking frame carries its own audio
    speech = np.tile(SPEECH, 25)
    await producer.enqueue("turn-1", speech)
    producer.finish("turn-1")
    chunks = [await producer.produce(FrameSlot(i, 25)) for i in range(30)]
    speaking = [c for c in chunks if c.speaking]
    assert len(speaking) == 25
    assert all(np.array_equal(c.audio, SPEECH) and c.meta["turn_id"] == "turn-1" for c in speaking)
    assert all(not c.speaking and not c.audio.any() for c in chunks[25:])
    await stream.stop()


def test_render_cost_leaves_room_on_one_core(animator: PortraitAnimator) -> None:
    """Not a timing assertion: the figure is measured by `avatar bench face`; this only checks shapes."""
    frame = animator.render(FrameSlot(0, 25), SPEECH, True)
    assert frame.shape == (512, 512, 3) and frame.dtype == np.uint8
