"""The box's exact `vllm serve` command line, parsed by vLLM 0.11.0's own parser in the box's locked vLLM
environment (container/vllm/uv.lock, built here with `uv sync --frozen`; no GPU needed to parse).

A flag that vLLM does not know, or a value it refuses, fails here instead of on the rented GPU.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from peer_remote.box.plan import vllm_spec
from peer_remote.box.settings import BoxSettings

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
VLLM_PROJECT = ROOT / "container" / "vllm"
PARSER_SCRIPT = Path(__file__).with_name("vllm_serve_args.py")


def locked_vllm_python() -> Path:
    """container/vllm/.venv from the lock (a no-op when it is already in sync; CI builds it before pytest)."""
    uv = shutil.which("uv")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")}
    problem = "uv is not on PATH"
    if uv:
        result = subprocess.run(
            [uv, "sync", "--frozen", "--project", str(VLLM_PROJECT)],
            capture_output=True,
            text=True,
            timeout=1200,
            env=env,
            check=False,
        )
        if result.returncode == 0:
            return VLLM_PROJECT / ".venv" / "bin" / "python"
        problem = result.stderr[-2000:]
    if os.environ.get("CI"):
        pytest.fail(f"the locked vLLM environment cannot be built: {problem}")
    pytest.skip(f"the locked vLLM environment cannot be built here (CI builds it): {problem}")


@pytest.fixture(scope="module")
def box_argv() -> list[str]:
    settings = BoxSettings.load({"token": "t"})
    argv = list(vllm_spec(settings).argv)
    assert argv[0] == settings.vllm_command
    return argv[1:]  # what follows the `vllm` executable: "serve", the model, the flags


@pytest.fixture(scope="module")
def parsed(box_argv: list[str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Both command lines in one run: importing vLLM takes most of a minute on two cores."""
    python = locked_vllm_python()
    out = tmp_path_factory.mktemp("vllm") / "parsed.json"
    argvs = [box_argv, [*box_argv, "--no-such-flag", "1"], [*box_argv, "--max-num-seqs", "four"]]
    result = subprocess.run(
        [str(python), str(PARSER_SCRIPT), str(out)],
        input=json.dumps(argvs),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    parsed: dict[str, Any] = json.loads(out.read_text())
    return parsed


def test_the_locked_environment_is_vllm_0_11_0_with_transformers_4(parsed: dict[str, Any]) -> None:
    assert parsed["vllm"] == "0.11.0"
    assert parsed["transformers"].startswith("4.")  # 5.x breaks vLLM 0.11's tokenizer and Gemma 2 code


def test_vllm_loads_a_gemma2_config_and_tokenizer_in_the_locked_environment(parsed: dict[str, Any]) -> None:
    """Regression (issue 16, defect 2): with transformers 5 both loaders fail (AttributeError) at start-up."""
    files = parsed["gemma2_files"]
    assert files["ok"], files.get("error")
    assert files["model_type"] == "gemma2" and files["rope_theta"] == 10000.0
    assert {"<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"} <= set(files["special_tokens"])


def test_the_box_vllm_command_line_parses_with_vllm_s_own_parser(box_argv: list[str], parsed: dict[str, Any]) -> None:
    settings = BoxSettings.load({"token": "t"})
    box = parsed["results"][0]
    assert box["ok"], box.get("error")
    assert box["host"] == "127.0.0.1" and box["port"] == settings.vllm_port
    engine = box["engine"]
    assert engine["model"] == settings.llm_model
    assert engine["served_model_name"] == [settings.llm_model]
    assert engine["quantization"] == settings.llm_quantization == "bitsandbytes"
    assert engine["max_model_len"] == settings.llm_max_model_len
    assert engine["gpu_memory_utilization"] == pytest.approx(settings.llm_gpu_memory_utilization)
    assert engine["kv_cache_memory_bytes"] == settings.llm_kv_cache_bytes
    assert engine["max_num_seqs"] == 4


def test_vllm_s_parser_refuses_an_unknown_flag_and_a_bad_value(parsed: dict[str, Any]) -> None:
    unknown, bad_value = parsed["results"][1:]
    assert not unknown["ok"] and unknown["exit"] == 2
    assert "unrecognized arguments: --no-such-flag" in unknown["error"]
    assert not bad_value["ok"] and "--max-num-seqs" in bad_value["error"] and "invalid" in bad_value["error"]
