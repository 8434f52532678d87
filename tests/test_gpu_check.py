"""benchmarks/gpu_check.py in CI's CPU form (tiny networks), so the script the GPU box is checked with cannot rot."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[1]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_gpu_check_runs_on_the_cpu_with_tiny_networks_and_writes_its_figures(tmp_path: Path) -> None:
    port = closed_port()  # nothing listens: the TTS and LLM checks must say so, not fail
    out = tmp_path / "gpu-check.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "gpu_check.py"),
            "--device",
            "cpu",
            "--tiny",
            "--frames",
            "8",
            "--json",
            str(out),
            "--models-dir",
            str(tmp_path / "no-models"),
            "--fish-url",
            f"http://127.0.0.1:{port}",
            "--llm-url",
            f"http://127.0.0.1:{port}/v1",
        ],
        capture_output=True,
        text=True,
        timeout=540,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["check"] == "gpu" and result["device"] == "cpu" and result["gpu"] is None
    muse = result["musetalk"]
    assert muse["size"] == "tiny" and muse["random_weights"] and muse["dtype"] == "float32"
    assert muse["batch_size"] == 8 and muse["frames"] == 8 and muse["crop_source"] == "haar"
    assert set(muse["ms_per_frame"]) == {"whisper", "unet", "vae_decode", "paste"}
    assert all(v > 0 for v in muse["ms_per_frame"].values()) and muse["fps"] > 0
    assert muse["vae_encode_reference_ms"] > 0 and muse["whisper_ms_per_clause"] > 0
    assert muse["peak_vram_mib"] is None  # no CUDA figures on the CPU
    for part in ("tts", "llm"):
        assert result[part]["status"] == "skipped"
        assert f"127.0.0.1:{port}" in result[part]["reason"]
    assert "absent" in result["tts"]["reason"]  # and whether the weights are there
    assert "musetalk (tiny, float32, batch 8" in done.stdout and "tts: skipped" in done.stdout


def test_gpu_check_refuses_cuda_where_none_is_visible(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible here")
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--json", str(tmp_path / "x.json")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "no CUDA device visible" in done.stderr and "--device cpu" in done.stderr
    assert not (tmp_path / "x.json").exists()
