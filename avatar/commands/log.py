"""``avatar log``: print a session log readably."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from peer_local.session_log import default_log_path, format_record, read_log


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "log",
        help="print a session log: what was heard, what the clone said, how fast",
        description="Reads the JSONL session log that `avatar local` appends after every turn.",
    )
    parser.add_argument("path", type=Path, nargs="?", help="log file (unset: today's, under the user data dir)")
    parser.add_argument("--last", type=int, metavar="N", help="only the last N turns")
    parser.add_argument("--json", action="store_true", help="print the records as JSON lines")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path: Path = args.path or default_log_path()
    if not path.is_file():
        print(f"avatar log: no session log at {path}", file=sys.stderr)
        return 1
    records = read_log(path)
    if args.last:
        records = records[-args.last :]
    for record in records:
        print(json.dumps(record, ensure_ascii=False) if args.json else format_record(record))
    if not args.json:
        print(f"{len(records)} turns in {path}")
    return 0
