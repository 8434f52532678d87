"""``avatar bench``: measurements that print a table and write JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from media.settings import parse_size


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "bench",
        help="run a benchmark (prints a table, writes JSON)",
        description="Benchmarks of this machine and build.",
    )
    benches = parser.add_subparsers(dest="bench", metavar="BENCH", required=True)
    transport = benches.add_parser(
        "transport",
        help="signaling + remote (test pattern) + local on loopback: fps, latency, A/V offset, CPU",
        description="Start a signaling server, a remote peer streaming the test pattern and a local peer, all on "
        "127.0.0.1 (each peer its own process), and measure what arrives.",
    )
    transport.add_argument("--codec", choices=["VP8", "H264"], default="VP8", help="video codec (default VP8)")
    transport.add_argument("--size", default="512x512", help="video size (default 512x512)")
    transport.add_argument("--fps", type=int, default=25, help="frame rate (default 25)")
    transport.add_argument(
        "--duration", type=float, default=20.0, help="measured seconds, after a 2 s warm-up (default 20)"
    )
    transport.add_argument("--json", type=Path, metavar="PATH", help="write the results here")
    transport.set_defaults(func=run_transport)


def run_transport(args: argparse.Namespace) -> int:
    from peer_local.bench.transport import TransportBenchConfig, print_table, run_transport_bench

    try:
        width, height = parse_size(args.size)
    except ValueError as exc:
        print(f"avatar bench transport: {exc}", file=sys.stderr)
        return 2
    config = TransportBenchConfig(codec=args.codec, width=width, height=height, fps=args.fps, duration_s=args.duration)
    result = asyncio.run(run_transport_bench(config))
    print_table(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")
    return 0 if "error" not in result else 1
