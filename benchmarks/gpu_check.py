"""The GPU box's models on this machine, no network: MuseTalk at real size with random weights, then the TTS and
the LLM wherever their servers (and so their weights) are up. Under 5 minutes on a CUDA machine.

MuseTalk: random-weight networks written in upstream's file formats, loaded by the box's loader, fp16 on CUDA
(fp32 on the CPU), the box's batch size; prints and writes fps, milliseconds per stage (whisper features per
clause and per frame, VAE encode of the reference, UNet, VAE decode, blend) and peak VRAM. TTS and LLM: one
request each to the Fish Speech and vLLM servers the box runs; skipped, with the reason, where none answers.

    uv run --extra musetalk python benchmarks/gpu_check.py --json artifacts/gpu-check.json   # on the box (docs/deploy.md)
    uv run --extra musetalk python benchmarks/gpu_check.py --device cpu --tiny --json /tmp/gc.json   # what CI runs
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from media.frames import AUDIO_RATE, FrameSlot
from peer_remote.box.settings import DEFAULT_LLM
from peer_remote.face.musetalk import BATCH_SIZE, MuseTalkAnimator
from peer_remote.face.musetalk_random_weights import write_random_models

FPS = 25
PROBE_TIMEOUT_S = 10.0
TTS_TEXT = "Hello! This is a short check of the cloned voice, one sentence long."
LLM_PROMPT = "In two sentences, what is a video call?"


def speech(seconds: float) -> np.ndarray:
    """A voiced-ish 48 kHz signal (two harmonics with a syllable envelope): the features' content does not matter."""
    t = np.arange(int(seconds * AUDIO_RATE)) / AUDIO_RATE
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)
    wave = np.sin(2 * np.pi * 180 * t) + 0.4 * np.sin(2 * np.pi * 720 * t)
    return (wave * envelope * 9_000).astype(np.int16)


def check_musetalk(device: str, tiny: bool, frames: int, batch_size: int, models_dir: Path | None) -> dict[str, Any]:
    import torch

    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    workdir = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    started = time.perf_counter()
    random_weights = models_dir is None
    if models_dir is None:
        models_dir = write_random_models(workdir / "models", "tiny" if tiny else "real")
    write_s = time.perf_counter() - started
    face = MuseTalkAnimator(models_dir, device=device, cache_dir=workdir, batch_size=batch_size, fps=FPS)
    started = time.perf_counter()
    face.prepare()  # loads the networks, crops the default portrait, encodes the reference
    prepare_s = time.perf_counter() - started
    assert face.models is not None
    load_s = prepare_s - face.times.ms["vae_encode"] / 1000

    face.observe_speech(speech(batch_size / FPS))  # warm-up batch: CUDA kernels, cuDNN algorithms, allocator
    face.end_speech()
    face.render_batch(np.stack(list(face._features)))
    face.reset_speech()
    vae_encode_ms = face.times.ms["vae_encode"]
    face.times = type(face.times)()

    clause = speech(frames / FPS)
    started = time.perf_counter()
    face.observe_speech(clause)
    face.end_speech()
    whisper_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    for i in range(frames):
        face.render(FrameSlot(i, FPS), clause[i * AUDIO_RATE // FPS : (i + 1) * AUDIO_RATE // FPS], True)
    render_s = time.perf_counter() - started
    return {
        "size": "tiny" if tiny else "real",
        "random_weights": random_weights,
        "dtype": str(face.models.dtype).removeprefix("torch."),
        "batch_size": batch_size,
        "frames": frames,
        "crop_source": face.crop_source,
        "fps": round(frames / render_s, 2),
        "ms_per_frame": face.times.per_frame(),  # whisper, unet, vae_decode, paste (blend)
        "whisper_ms_per_clause": round(whisper_ms, 1),
        "clause_s": round(frames / FPS, 2),
        "vae_encode_reference_ms": round(vae_encode_ms, 1),
        "load_s": round(load_s, 2),
        "write_weights_s": round(write_s, 2),
        "peak_vram_mib": round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if cuda else None,
    }


async def check_tts(url: str, models_dir: Path) -> dict[str, Any]:
    from peer_remote.tts.base import TtsError
    from peer_remote.tts.fish import FishSpeechSynthesizer

    weights = (models_dir / "fish-speech-1.5" / "model.pth").is_file()
    synthesizer = FishSpeechSynthesizer(url, reference=None)
    try:
        try:
            await asyncio.wait_for(synthesizer.load(), PROBE_TIMEOUT_S)
        except (TtsError, TimeoutError) as exc:
            return {
                "status": "skipped",
                "url": url,
                "weights_present": weights,
                "reason": f"no Fish Speech server answers at {url} ({exc}); weights in {models_dir}: "
                f"{'present' if weights else 'absent'}; start the box (avatar box) or pass --fish-url",
            }
        started = time.perf_counter()
        first_s, samples = None, 0
        async for block in synthesizer.synthesize(TTS_TEXT):
            first_s = first_s if first_s is not None else time.perf_counter() - started
            samples += block.size
        wall_s = time.perf_counter() - started
        audio_s = samples / synthesizer.sample_rate
        return {
            "status": "ok",
            "url": url,
            "first_audio_s": round(first_s or wall_s, 3),
            "audio_s": round(audio_s, 2),
            "wall_s": round(wall_s, 2),
            "real_time_factor": round(wall_s / audio_s, 3) if audio_s else None,
        }
    except TtsError as exc:
        return {"status": "failed", "url": url, "reason": str(exc)}
    finally:
        await synthesizer.close()


async def check_llm(url: str, model: str) -> dict[str, Any]:
    from peer_remote.llm.base import ChatMessage, LlmError
    from peer_remote.llm.openai_compat import OpenAIChatModel

    llm = OpenAIChatModel(url, model)
    try:
        try:
            await asyncio.wait_for(llm.load(), PROBE_TIMEOUT_S)
        except (LlmError, TimeoutError) as exc:
            return {
                "status": "skipped",
                "url": url,
                "model": model,
                "reason": f"no LLM server serving {model} answers at {url} ({exc}); "
                "start the box (avatar box) or pass --llm-url/--llm-model",
            }
        started = time.perf_counter()
        first_s, text = None, ""
        async for delta in llm.stream([ChatMessage("user", LLM_PROMPT)], max_tokens=96, temperature=0.0):
            first_s = first_s if first_s is not None else time.perf_counter() - started
            text += delta
        wall_s = time.perf_counter() - started
        tokens = llm.count_tokens(text)
        return {
            "status": "ok",
            "url": url,
            "model": model,
            "first_token_s": round(first_s or wall_s, 3),
            "approx_tokens": tokens,
            "approx_tokens_per_s": round(tokens / max(1e-6, wall_s - (first_s or 0.0)), 1),
            "wall_s": round(wall_s, 2),
        }
    except LlmError as exc:
        return {"status": "failed", "url": url, "model": model, "reason": str(exc)}
    finally:
        await llm.close()


def environment(device: str) -> dict[str, Any]:
    import torch

    return {
        "device": device,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(device) if device.startswith("cuda") else None,
        "driver_visible": torch.cuda.is_available(),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--device", default="cuda", help="cuda (fp16, the default) or cpu (fp32)")
    parser.add_argument("--tiny", action="store_true", help="tiny MuseTalk networks (CI's CPU form)")
    parser.add_argument("--frames", type=int, default=None, help="frames to render (200 real, 16 tiny)")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help=f"UNet batch (the box's: {BATCH_SIZE})")
    parser.add_argument("--musetalk-models", type=Path, default=None, help="real weights instead of random ones")
    parser.add_argument("--models-dir", type=Path, default=Path("/models"), help="the box's models volume")
    parser.add_argument("--fish-url", default="http://127.0.0.1:8081", help="the box's Fish Speech server")
    parser.add_argument("--llm-url", default="http://127.0.0.1:8000/v1", help="the box's vLLM server")
    parser.add_argument("--llm-model", default=DEFAULT_LLM)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(
            f"no CUDA device visible (torch {torch.__version__}, built for CUDA {torch.version.cuda}); "
            "run with --device cpu for the slow CPU form",
            file=sys.stderr,
        )
        return 2
    frames = args.frames or (16 if args.tiny else 200)
    started = time.perf_counter()
    result: dict[str, Any] = {"check": "gpu", **environment(args.device)}
    result["musetalk"] = check_musetalk(args.device, args.tiny, frames, args.batch_size, args.musetalk_models)
    m = result["musetalk"]
    stages = ", ".join(f"{k} {v} ms" for k, v in m["ms_per_frame"].items())
    print(f"musetalk ({m['size']}, {m['dtype']}, batch {m['batch_size']}, crop from {m['crop_source']}):")
    print(f"  {m['fps']} fps over {m['frames']} frames; per frame: {stages}")
    print(
        f"  whisper {m['whisper_ms_per_clause']} ms for a {m['clause_s']} s clause; reference VAE encode "
        f"{m['vae_encode_reference_ms']} ms; load {m['load_s']} s; peak VRAM {m['peak_vram_mib']} MiB"
    )
    result["tts"] = asyncio.run(check_tts(args.fish_url, args.models_dir))
    result["llm"] = asyncio.run(check_llm(args.llm_url, args.llm_model))
    for name in ("tts", "llm"):
        part = result[name]
        figures = {k: v for k, v in part.items() if k not in ("status", "reason", "url", "model")}
        print(f"{name}: {part['status']}: {part.get('reason') or figures}")
    result["wall_s"] = round(time.perf_counter() - started, 1)
    print(f"total {result['wall_s']} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
