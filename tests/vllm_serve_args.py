"""Parses `vllm serve` command lines with vLLM's own parser; run by the box's locked vLLM environment
(container/vllm), not by the project's, and imports nothing of ours.

Usage: PYTHON vllm_serve_args.py RESULT.json < argvs.json (a JSON list of argument lists, each starting with
"serve"). Writes one result per list: {"ok": true, "engine": {...}} or {"ok": false, "error": "..."}.
No GPU is needed: only the platform's device type is consulted while the parser is built.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
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
from vllm.engine.arg_utils import AsyncEngineArgs  # noqa: E402
from vllm.entrypoints.cli.serve import ServeSubcommand  # noqa: E402
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


def main() -> None:
    argvs = json.load(sys.stdin)
    results = {
        "vllm": vllm.__version__,
        "transformers": transformers.__version__,
        "results": [parse(argv) for argv in argvs],
    }
    with open(sys.argv[1], "w", encoding="utf-8") as out:
        json.dump(results, out, default=str)


if __name__ == "__main__":
    main()
