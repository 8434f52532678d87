"""``avatar bench face``: render capacity of the portrait at 512x512, and MuseTalk's per-frame stage times."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from media.frames import FrameSlot

SPEECH = (np.sin(np.arange(1920) / 48_000 * 2 * np.pi * 220) * 12_000).astype(np.int16)


def _cpu_seconds() -> float:
    return time.process_time()


def bench_portrait(frames: int = 500, size: int = 512) -> dict[str, Any]:
    from peer_remote.face.portrait import PortraitAnimator

    face = PortraitAnimator(width=size, height=size, cache_dir=Path(tempfile.mkdtemp(prefix="avatar-face-")))
    face.prepare()
    wall, cpu = time.perf_counter(), _cpu_seconds()
    for i in range(frames):
        speaking = (i // 50) % 2 == 0  # 2 s speaking, 2 s silent
        face.render(FrameSlot(i, 25), SPEECH if speaking else np.zeros(1920, dtype=np.int16), speaking)
    wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
    fps = frames / wall
    return {
        "size": f"{size}x{size}",
        "frames": frames,
        "fps": round(fps, 1),
        "ms_per_frame": round(1000 * wall / frames, 2),
        "cpu_percent": round(100 * cpu / wall, 1),
        "cpu_percent_at_25fps": round(100 * 25 * (cpu / frames), 1),
    }


def bench_musetalk(frames: int = 50, device: str = "cpu", models_dir: Path | None = None) -> dict[str, Any]:
    from peer_remote.face.musetalk import MuseTalkAnimator
    from peer_remote.face.musetalk_random_weights import write_tiny_models

    tiny = models_dir is None
    workdir = Path(tempfile.mkdtemp(prefix="avatar-musetalk-"))
    directory = write_tiny_models(workdir / "models") if models_dir is None else models_dir
    face = MuseTalkAnimator(directory, device=device, cache_dir=workdir, batch_size=8)
    face.prepare()
    speech = np.tile(SPEECH, frames)
    wall = time.perf_counter()
    face.observe_speech(speech)
    for i in range(frames):
        face.render(FrameSlot(i, 25), SPEECH, True)
    wall = time.perf_counter() - wall
    return {
        "device": device,
        "tiny_random_models": tiny,
        "frames": frames,
        "batch_size": face.batch_size,
        "stage_ms_per_frame": face.times.per_frame(),
        "fps": round(frames / wall, 1),
    }


def run_face_bench(musetalk_models: Path | None, device: str) -> dict[str, Any]:
    return {
        "bench": "face",
        "portrait": bench_portrait(),
        "musetalk": bench_musetalk(device=device, models_dir=musetalk_models),
    }


def print_face_table(result: dict[str, Any]) -> None:
    p, m = result["portrait"], result["musetalk"]
    print(
        f"portrait {p['size']}: {p['fps']} fps capacity ({p['ms_per_frame']} ms/frame); "
        f"{p['cpu_percent_at_25fps']}% of one core at 25 fps"
    )
    kind = "tiny random models" if m["tiny_random_models"] else "real models"
    stages = ", ".join(f"{k} {v} ms" for k, v in m["stage_ms_per_frame"].items())
    print(f"musetalk ({kind}, {m['device']}, batch {m['batch_size']}): {m['fps']} fps; per frame: {stages}")
