"""``avatar demo`` end to end as a real process: the README's main command."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import av
import numpy as np
import pytest

from benchmarks.harness.speech import conversation
from tests.peer_helpers import run_avatar

pytestmark = pytest.mark.slow


async def run_demo(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVATAR_")}
    code, out, _ = await run_avatar("demo", "--port", "0", "--no-browser", *args, timeout_s=120, env=env)
    assert code == 0
    return out


async def test_demo_prints_a_join_url_and_records_the_stream(tmp_path: Path) -> None:
    out = tmp_path / "demo.mp4"
    stdout = await run_demo("--duration", "3", "--record", str(out), "--input", "none")
    assert re.search(r"http://127\.0\.0\.1:\d+/\?room=demo&token=\S{20,}", stdout)
    with av.open(str(out)) as container:
        video = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        assert container.streams.audio
    assert frames >= 60  # ~3 s at 25 fps
    assert video.codec_context.width == 512


async def test_demo_answers_a_spoken_question_after_it_ends(tmp_path: Path) -> None:
    question = conversation(tmp_path / "question.wav", ["What time is the meeting tomorrow?"], gap_s=1.0, lead_s=0.5)
    out = tmp_path / "answer.mp4"
    metrics = tmp_path / "metrics.json"
    await run_demo("--input", str(question), "--duration", "10", "--record", str(out), "--metrics-json", str(metrics))
    (turn,) = json.loads(metrics.read_text())["turns"]
    assert turn["text"]
    # timed to the first audio of this turn's own answer, announced by the avatar's `turn` message
    assert turn["end_of_speech_to_first_audio_ms"] > turn["asr_ms"]
    with av.open(str(out)) as container:
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    with av.open(str(out)) as container:
        times = [float(f.time) for f in container.decode(video=0)]
    seconds = audio.size // 48_000
    level = [float(np.sqrt(np.mean(audio[i * 48_000 : (i + 1) * 48_000] ** 2))) for i in range(seconds)]
    assert max(level[:2]) < 0.01  # the avatar is silent while the question is asked
    assert max(level[3:]) > 0.02  # and answers after it ends
    steps = np.diff(times)
    assert len(times) >= 10 * 25 * 0.9 and np.median(steps) == pytest.approx(0.04, abs=0.005)
