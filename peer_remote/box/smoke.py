"""``avatar smoke``: on the GPU box, check each configured backend once and print its key figure.

LLM: time to the first streamed token; TTS: time to the first audio block; face: frames per second at
512x512 while speaking; lip sync: the mouth/energy offset of one spoken clause; plus the GPU's memory in use
when ``nvidia-smi`` is there. A failing backend is
reported with its error and the others still run.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from media.frames import AUDIO_RATE, FrameSlot
from media.resample import Resampler48k
from media.sync_offset import rendered_speech_offset
from peer_remote.avatar_producer import AvatarProducer
from peer_remote.backends import build_face, build_llm, build_tts
from peer_remote.llm.base import ChatMessage
from peer_remote.settings import SpeakingSettings

PROMPT = "In one short sentence: what is a video call?"
SENTENCE = "Hello, this is the avatar's voice check."
SMOKE_FPS = 25


async def check_llm(settings: SpeakingSettings) -> dict[str, Any]:
    llm = build_llm(settings)
    await llm.load()
    start = time.perf_counter()
    first: float | None = None
    pieces: list[str] = []
    async for piece in llm.stream([ChatMessage("user", PROMPT)], max_tokens=32, temperature=0.0):
        if first is None:
            first = time.perf_counter() - start
        pieces.append(piece)
    total = time.perf_counter() - start
    text = "".join(pieces).strip()
    if first is None or not text:
        raise RuntimeError("the model streamed no text")
    return {
        "backend": settings.llm,
        "first_token_ms": round(1000 * first, 1),
        "total_ms": round(1000 * total, 1),
        "text": text[:120],
    }


async def check_tts(settings: SpeakingSettings, clause: list[np.ndarray] | None = None) -> dict[str, Any]:
    """Time to the first audio block; the spoken sentence (48 kHz) goes to ``clause`` for the lip-sync check."""
    tts = build_tts(settings)
    await tts.load()
    start = time.perf_counter()
    first: float | None = None
    blocks: list[np.ndarray] = []
    async for block in tts.synthesize(SENTENCE):
        if first is None and len(block):
            first = time.perf_counter() - start
        blocks.append(np.asarray(block))
    total = time.perf_counter() - start
    samples = sum(len(b) for b in blocks)
    if first is None or samples == 0:
        raise RuntimeError("the voice produced no audio")
    if clause is not None:
        resampler = Resampler48k(tts.sample_rate)
        clause.append(np.concatenate([*(resampler.convert(b) for b in blocks), resampler.flush()]))
    audio_s = samples / tts.sample_rate
    return {
        "backend": settings.tts,
        "first_audio_ms": round(1000 * first, 1),
        "audio_s": round(audio_s, 2),
        "real_time_factor": round(total / audio_s, 3),
    }


def check_face(settings: SpeakingSettings, frames: int) -> dict[str, Any]:
    face = build_face(settings, 512, 512)
    start = time.perf_counter()
    face.prepare()
    prepare_s = time.perf_counter() - start
    t = np.arange(1920 * frames) / 48_000
    speech = (np.sin(2 * np.pi * 180 * t) * np.sin(2 * np.pi * 3 * t) * 12_000).astype(np.int16)
    observe = getattr(face, "observe_speech", None)
    start = time.perf_counter()
    if observe is not None:
        observe(speech)
    for i in range(frames):
        frame = face.render(FrameSlot(i, 25), speech[i * 1920 : (i + 1) * 1920], True)
    wall = time.perf_counter() - start
    if frame.shape != (512, 512, 3):
        raise RuntimeError(f"the face rendered frames of shape {frame.shape}, not 512x512x3")
    return {
        "backend": settings.face,
        "prepare_s": round(prepare_s, 2),
        "frames": frames,
        "fps": round(frames / wall, 1),
    }


async def check_lip_sync(settings: SpeakingSettings, speech: np.ndarray | None, size: int = 512) -> dict[str, Any]:
    """One spoken clause through the avatar's producer (the slot pairing a call uses) and the configured face;
    the offset between mouth opening and voice energy (media/sync_offset.py, as ``avatar bench sync`` reads it)."""
    if speech is None:
        raise RuntimeError("no spoken clause: the voice check failed")
    face = build_face(settings, size, size)
    await asyncio.to_thread(face.prepare)
    producer = AvatarProducer(face)
    lead = np.zeros(AUDIO_RATE // 2, dtype=np.int16)  # idle first, so the mouth is found closed
    await producer.enqueue("smoke", np.concatenate([lead, speech, lead]))
    frames, audio = [], []
    slots = (2 * lead.size + speech.size) // FrameSlot(0, SMOKE_FPS).audio_samples
    for index in range(slots):
        chunk = await producer.produce(FrameSlot(index, SMOKE_FPS))
        frames.append(chunk.video)
        audio.append(chunk.audio)
    fit = await asyncio.to_thread(rendered_speech_offset, frames, np.concatenate(audio), SMOKE_FPS)
    if fit is None:
        raise RuntimeError("the face did not move with the voice (no mouth motion to correlate)")
    return {
        "backend": settings.face,
        "offset_ms": round(fit.offset_s * 1000, 1),
        "correlation": round(fit.correlation, 3),
        "frames": fit.frames,
    }


def gpu_memory() -> dict[str, Any] | None:
    """Memory in use per GPU from nvidia-smi, or None without one."""
    if shutil.which("nvidia-smi") is None:
        return None
    out = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,memory.used,memory.total", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    ).stdout
    gpus = []
    for line in out.strip().splitlines():
        name, used, total = (part.strip() for part in line.split(","))
        gpus.append({"name": name, "used_mib": int(used), "total_mib": int(total)})
    return {"gpus": gpus}


async def _run_check(check: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    try:
        return {"ok": True, **await check()}
    except Exception as exc:  # a smoke test reports every failure instead of stopping at the first
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


async def run_smoke(settings: SpeakingSettings, frames: int = 100) -> dict[str, Any]:
    clause: list[np.ndarray] = []
    checks = {
        "llm": await _run_check(lambda: check_llm(settings)),
        "tts": await _run_check(lambda: check_tts(settings, clause)),
        "face": await _run_check(lambda: asyncio.to_thread(check_face, settings, frames)),
        "lip_sync": await _run_check(lambda: check_lip_sync(settings, clause[0] if clause else None)),
    }
    gpu = await asyncio.to_thread(gpu_memory)
    return {"bench": "smoke", "ok": all(c["ok"] for c in checks.values()), "checks": checks, "gpu": gpu}


def smoke_lines(result: dict[str, Any]) -> list[str]:
    checks = result["checks"]
    lines = []
    for name, figure, unit in (
        ("llm", "first_token_ms", "ms to first token"),
        ("tts", "first_audio_ms", "ms to first audio"),
        ("face", "fps", "fps at 512x512"),
        ("lip_sync", "offset_ms", "ms mouth behind voice (negative: ahead), one clause"),
    ):
        check = checks[name]
        if check["ok"]:
            lines.append(f"{name:5} ok    {check['backend']}: {check[figure]} {unit}")
        else:
            lines.append(f"{name:5} FAIL  {check['error']}")
    for gpu in (result.get("gpu") or {}).get("gpus", []):
        lines.append(f"gpu   {gpu['name']}: {gpu['used_mib']} of {gpu['total_mib']} MiB in use")
    return lines
