"""Parses `vllm serve` command lines with vLLM's own parser; run by the box's locked vLLM environment
(container/vllm), not by the project's, and imports nothing of ours.

Usage: PYTHON vllm_serve_args.py RESULT.json < argvs.json (a JSON list of argument lists, each starting with
"serve"). Writes one result per list: {"ok": true, "engine": {...}} or {"ok": false, "error": "..."}, and what
vLLM's own loaders make of a tiny Gemma 2 checkpoint's config and tokenizer (the code paths transformers 5 breaks).
No GPU is needed: only the platform's device type is consulted while the parser is built.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import vllm.platforms
from vllm.platforms.interface import Platform, PlatformEnum


class CudaPlatformStandIn(Platform):
    """A STAND-IN for vllm.platforms.cuda.CudaPlatform, the platform vLLM resolves on the box: importing the real
    one loads vllm._C, which needs the NVIDIA driver's libcuda.so.1. Building and reading the parser consults only
    these attributes (vllm/platforms/cuda.py: _enum CUDA, device_type "cuda"; CudaPlatform keeps
    Platform.pre_register_and_update, which adds no flags)."""

    _enum = PlatformEnum.CUDA
    device_name = "cuda"
    device_type = "cuda"


vllm.platforms._current_platform = CudaPlatformStandIn()  # what vllm.platforms.__getattr__ would resolve and cache

import transformers  # noqa: E402
from tokenizers import Tokenizer, models, pre_tokenizers  # noqa: E402
from vllm.engine.arg_utils import AsyncEngineArgs  # noqa: E402
from vllm.entrypoints.cli.serve import ServeSubcommand  # noqa: E402
from vllm.transformers_utils.config import get_config  # noqa: E402
from vllm.transformers_utils.tokenizer import get_tokenizer  # noqa: E402
from vllm.utils import FlexibleArgumentParser  # noqa: E402

ENGINE_FIELDS = (
    "model",
    "served_model_name",
    "quantization",
    "max_model_len",
    "gpu_memory_utilization",
    "kv_cache_memory_bytes",
    "max_num_seqs",
)


def serve_parser() -> tuple[FlexibleArgumentParser, ServeSubcommand]:
    """The parser `vllm` builds in vllm/entrypoints/cli/main.py, with its `serve` subcommand."""
    parser = FlexibleArgumentParser(description="vLLM CLI")
    subparsers = parser.add_subparsers(required=False, dest="subparser")
    serve = ServeSubcommand()
    serve.subparser_init(subparsers).set_defaults(dispatch_function=serve.cmd)
    return parser, serve


def parse(argv: list[str]) -> dict[str, Any]:
    parser, serve = serve_parser()
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            args: argparse.Namespace = parser.parse_args(argv)
    except SystemExit as exc:  # argparse's error(): usage and message on stderr, exit 2
        return {"ok": False, "exit": exc.code, "error": errors.getvalue()}
    serve.validate(args)  # vllm/entrypoints/cli/main.py calls it before dispatching
    if args.model_tag is not None:  # as ServeSubcommand.cmd does before run_server
        args.model = args.model_tag
    engine = AsyncEngineArgs.from_cli_args(args)  # as the API server builds its engine client
    return {
        "ok": True,
        "host": args.host,
        "port": args.port,
        "engine": {name: getattr(engine, name) for name in ENGINE_FIELDS},
    }


def load_gemma2_files() -> dict[str, Any]:
    """A tiny Gemma 2 checkpoint's config and tokenizer (no weights), read by vLLM's loaders as on the box:
    get_tokenizer wraps it in get_cached_tokenizer (reads all_special_tokens_extended) and gemma2.py reads
    config.rope_theta; both are gone in transformers 5."""
    with tempfile.TemporaryDirectory() as directory:
        model = Path(directory)
        transformers.Gemma2Config(
            vocab_size=8, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
            num_key_value_heads=1, head_dim=8,
        ).save_pretrained(model)  # fmt: skip
        vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "<start_of_turn>": 4, "<end_of_turn>": 5}
        words = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
        words.pre_tokenizer = pre_tokenizers.Whitespace()
        transformers.PreTrainedTokenizerFast(
            tokenizer_object=words, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>",
            additional_special_tokens=["<start_of_turn>", "<end_of_turn>"],
        ).save_pretrained(model)  # fmt: skip
        try:
            config = get_config(model, trust_remote_code=False)
            tokenizer = get_tokenizer(model)
            return {
                "ok": True,
                "model_type": config.model_type,
                "rope_theta": config.rope_theta,  # as vllm/model_executor/models/gemma2.py reads it
                "special_tokens": tokenizer.all_special_tokens_extended,
            }
        except Exception as exc:  # the box would crash here at start-up
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


def main() -> None:
    argvs = json.load(sys.stdin)
    results = {
        "vllm": vllm.__version__,
        "transformers": transformers.__version__,
        "results": [parse(argv) for argv in argvs],
        "gemma2_files": load_gemma2_files(),
    }
    with open(sys.argv[1], "w", encoding="utf-8") as out:
        json.dump(results, out, default=str)


if __name__ == "__main__":
    main()
