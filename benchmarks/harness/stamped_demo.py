"""``python -m benchmarks.harness.stamped_demo demo ARGS``: ``avatar demo ARGS`` observed by a benchmark.

The avatar's frames carry a stamp (media/stamping.py: slot, due time, "this frame's audio is speech") and the
laptop's probe reads it, so ``avatar bench e2e`` times the answer's first speaking video frame as well as its first
audio. The stamping is attached here, by the benchmark, never by a flag or a setting of the demo itself.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from avatar.commands import demo as demo_command
from avatar.main import build_parser, configure_logging
from media.stamping import StampingProducer
from peer_local.turn_latency import SpeechOnsetProbe


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if not words or words[0] != "demo":
        print("usage: python -m benchmarks.harness.stamped_demo demo [avatar demo flags]", file=sys.stderr)
        return 2
    args = build_parser(words).parse_args(words)
    configure_logging(args.log_level)
    return demo_command.run(args, wrap_producer=StampingProducer, probe=SpeechOnsetProbe(read_video=True))


if __name__ == "__main__":
    sys.exit(main())
