"""``avatar bench``: measurements that print a table and write JSON."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from avatar.options import add_settings_flags, load_settings, write_json
from media.settings import parse_size
from peer_local.asr.whisper import WhisperSettings
from peer_local.settings import ListeningSettings
from peer_remote.settings import RemoteSettings, SpeakingSettings


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "bench",
        help="run a benchmark (prints a table, writes JSON)",
        description="Benchmarks of this machine and build.",
    )
    benches = parser.add_subparsers(dest="bench", metavar="BENCH", required=True)
    transport = _bench(
        benches,
        "transport",
        run_transport,
        help="signaling + remote (test pattern) + local on loopback: fps, latency, A/V offset, CPU",
        description="Start a signaling server, a remote peer streaming the test pattern and a local peer, all on "
        "127.0.0.1 (each peer its own process), and measure what arrives.",
    )
    transport.add_argument(
        "--codec", choices=["VP8", "H264"], default=RemoteSettings.model_fields["codec"].default, help="video codec"
    )
    width, height = (RemoteSettings.model_fields[side].default for side in ("width", "height"))
    transport.add_argument("--size", default=f"{width}x{height}", help="video size")
    transport.add_argument("--fps", type=int, default=RemoteSettings.model_fields["fps"].default, help="frame rate")
    transport.add_argument("--duration", type=float, default=20.0, help="measured seconds, after a 2 s warm-up")
    transport.add_argument(
        "--impair",
        metavar="SPEC",
        help="run the peers in two network namespaces behind our impairment bridge, each way: "
        "delay=50ms,jitter=5ms,loss=3%%,reorder=1%%,burst=300ms/10s (needs root; adds max_freeze_ms and "
        "audio_recovery_s)",
    )

    sync = _bench(
        benches,
        "sync",
        run_sync,
        help="A/V offset read from what each sink outputs: the recorder's MP4, the virtual camera + microphone, "
        "the preview page",
        description="Stream the test pattern (white flash + 1 kHz beep) and then the portrait speaking to a local "
        "peer on 127.0.0.1 and measure the offset in the sinks' output: the MP4 decoded, the virtual microphone "
        "through a private PulseAudio null sink's monitor with the virtual camera's frames timestamped as sent, the "
        "preview page in headless Chromium on the page's clock (a WebAudio tap), and what the page plays into a "
        "second null sink against the frames it shows.",
    )
    sync.add_argument("--duration", type=float, default=20.0, help="measured seconds per source")
    sync.add_argument(
        "--sinks",
        default="recorder,camera-mic,page",
        help="comma-separated: recorder, camera-mic, page (the preview page in headless Chromium: its WebAudio tap "
        "and what it plays for the test pattern, the mouth it shows against what it plays for the avatar speaking)",
    )
    sync.add_argument("--sources", default="test-pattern,speaking", help="comma-separated: test-pattern, speaking")
    sync.add_argument("--size", type=int, default=320, help="square video edge in pixels")
    sync.add_argument(
        "--page-lip-sync",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the page trims the offset its browser leaves (--no-page-lip-sync: the browser's own sync alone, "
        "for comparison)",
    )
    sync.add_argument(
        "--page-stall-at",
        default="",
        help="comma-separated seconds after the page opens at which its browser is stopped for --page-stall "
        "seconds (a viewer's machine stalling: Chromium may show the picture differently from then on)",
    )
    sync.add_argument("--page-stall", type=float, default=0.2, help="seconds each page stall lasts")

    viewers = _bench(
        benches,
        "viewers",
        run_viewers,
        help="viewers 1, 3, 10 served by the avatar itself vs by Janus fed once over WHIP: avatar CPU, fps, latency",
        description="Start the avatar (test pattern) as its own process and N viewers in this one, first as its "
        "own subscribers through signaling (one encode each), then through Janus (Debian's, in a network "
        "namespace; needs root) with the avatar publishing once over WHIP; report the avatar's CPU, each "
        "viewer's fps and video latency p95.",
    )
    viewers.add_argument("--counts", default="1,3,10", help="viewer counts, comma-separated")
    viewers.add_argument("--size", default="320x240", help="video size")
    viewers.add_argument("--duration", type=float, default=10.0, help="measured seconds per run")
    viewers.add_argument("--no-janus", action="store_false", dest="janus", help="only the direct fan-out")

    cycles = _bench(
        benches,
        "cycles",
        run_cycles,
        help="connect and disconnect a local peer N times: memory, fds, threads and tasks against a baseline",
    )
    cycles.add_argument("--count", type=int, default=200, help="cycles; the first 10 warm up")

    soak = _bench(
        benches,
        "soak",
        run_soak,
        help="one long call (an hour unless --duration): latency, A/V offset, sender queues and memory per window, with slopes",
    )
    soak.add_argument("--duration", type=float, default=3600.0, help="seconds")
    soak.add_argument("--window", type=float, default=60.0, help="seconds per sample")

    asr = _bench(
        benches,
        "asr",
        run_asr,
        help="VAD + ASR over generated utterances played in real time: silence wait, ASR time, RTF, WER",
        description="Generate ten questions with espeak-ng, play them in real time through the listening path, and "
        "report the end-of-turn silence wait, the ASR time, end of speech -> transcript, RTF and WER.",
    )
    asr.add_argument(
        "--beam-size",
        type=int,
        default=WhisperSettings.model_fields["beam_size"].default,
        help="faster-whisper beam size",
    )
    asr.add_argument(
        "--end-silence-ms",
        type=int,
        default=ListeningSettings.model_fields["end_silence_ms"].default,
        help="silence that ends a turn",
    )

    face = _bench(
        benches,
        "face",
        run_face,
        help="portrait render capacity at 512x512 and CPU share; MuseTalk per-frame stage times",
        description="Render 500 portrait frames (fps = capacity, not the paced rate) and run MuseTalk's loop "
        "(tiny random models on the CPU unless --musetalk-models points at real ones).",
    )
    face.add_argument("--musetalk-models", type=Path, help="real MuseTalk models directory (unset: tiny random models)")
    face.add_argument("--device", default="cpu", help="device for MuseTalk")

    _bench(
        benches,
        "e2e",
        run_e2e,
        help="spoken questions through avatar demo: end of speech -> first avatar audio / speaking video at the local peer",
        description="Play generated questions through `avatar demo --input` (embedded CPU backends) and time, at "
        "the local peer, the end of each question to the avatar's first audio and first speaking video frame.",
    )

    meeting = _bench(
        benches,
        "meeting",
        run_meeting,
        help="a scripted multi-party meeting through avatar demo --answer addressed, silence vs smart-turn",
        description="Play a generated meeting (three espeak-ng voices, lines addressing the clone, a follow-up, "
        "a noise, a mid-sentence pause, an overlap) into `avatar demo --answer addressed`, once per end-of-turn "
        "detector, and report answered when addressed / not, talk-over events, cut lines and end of speech -> "
        "first clone audio.",
    )
    meeting.add_argument(
        "--detectors",
        default="silence,smart-turn",
        help="end-of-turn detectors to run the meeting with, comma-separated: silence, smart-turn or both",
    )
    meeting.add_argument(
        "--early-answer",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the demo's --early-answer: the avatar prepares its answer on the turn transcribed during the "
        "end-of-turn wait (--no-early-answer: only once the turn has ended)",
    )

    turn = _bench(
        benches,
        "turn",
        run_turn,
        help="transcript -> first audio frame out over 10 turns (LLM, TTS, face in process), with each stage",
        description="Feed ten transcripts to the avatar's responder (the configured LLM, TTS and face; embedded CPU "
        "defaults unless told otherwise) and time every stage up to the first audio and video frames sent.",
    )
    turn.add_argument("--turns", type=int, default=10, help="how many turns")
    add_settings_flags(turn, SpeakingSettings)


def _bench(
    benches: Any, name: str, runner: Callable[[argparse.Namespace], int], **kwargs: Any
) -> argparse.ArgumentParser:
    """One benchmark subcommand, with ``--json PATH`` and its runner."""
    parser: argparse.ArgumentParser = benches.add_parser(name, **kwargs)
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the results here")
    parser.set_defaults(func=runner)
    return parser


def run_cycles(args: argparse.Namespace) -> int:
    from benchmarks.cycles import print_cycles_table
    from benchmarks.cycles import run_cycles as cycles

    result = asyncio.run(cycles(args.count))
    print_cycles_table(result)
    write_json(args.json, result)
    return 0


def run_soak(args: argparse.Namespace) -> int:
    from benchmarks.soak import print_soak_table
    from benchmarks.soak import run_soak as soak

    result = asyncio.run(soak(args.duration, args.window))
    print_soak_table(result)
    write_json(args.json, result)
    return 0


def run_asr(args: argparse.Namespace) -> int:
    from benchmarks.asr import print_asr_table, run

    result = run(args.beam_size, args.end_silence_ms)
    print_asr_table(result)
    write_json(args.json, result)
    return 0


def run_face(args: argparse.Namespace) -> int:
    from benchmarks.face import print_face_table, run_face_bench

    result = run_face_bench(args.musetalk_models, args.device)
    print_face_table(result)
    write_json(args.json, result)
    return 0


def run_e2e(args: argparse.Namespace) -> int:
    from benchmarks.e2e import print_e2e_table, run_e2e_bench

    result = asyncio.run(run_e2e_bench())
    print_e2e_table(result)
    write_json(args.json, result)
    return 0 if "error" not in result else 1


def run_meeting(args: argparse.Namespace) -> int:
    from benchmarks.meeting import print_meeting_table, run_meeting_bench

    detectors = tuple(d.strip() for d in args.detectors.split(",") if d.strip())
    unknown = set(detectors) - {"silence", "smart-turn"}
    if unknown or not detectors:
        print(f"avatar bench meeting: --detectors takes silence and/or smart-turn, not {args.detectors!r}")
        return 2
    result = asyncio.run(run_meeting_bench(detectors, args.early_answer))
    print_meeting_table(result)
    write_json(args.json, result)
    return 0 if not any("error" in v for v in result.values() if isinstance(v, dict)) else 1


def run_turn(args: argparse.Namespace) -> int:
    from benchmarks.turn import print_turn_table, run_turn_bench

    settings = load_settings(RemoteSettings, args, "remote")
    if settings is None:
        return 2
    result = asyncio.run(run_turn_bench(settings, args.turns))
    print_turn_table(result)
    write_json(args.json, result)
    return 0


def run_sync(args: argparse.Namespace) -> int:
    from benchmarks.sync import SINKS, SOURCES, SyncBenchConfig, print_table, run_sync_bench

    sinks, sources = tuple(args.sinks.split(",")), tuple(args.sources.split(","))
    unknown = [s for s in sinks if s not in SINKS] + [s for s in sources if s not in SOURCES]
    if unknown:
        print(f"avatar bench sync: unknown sink or source {', '.join(unknown)}", file=sys.stderr)
        return 2
    try:
        stalls_at = tuple(float(at) for at in args.page_stall_at.split(",") if at.strip())
    except ValueError:
        print(
            f"avatar bench sync: --page-stall-at takes comma-separated seconds, not {args.page_stall_at!r}",
            file=sys.stderr,
        )
        return 2
    if args.page_stall <= 0 or any(at < 0 for at in stalls_at):
        print("avatar bench sync: --page-stall takes positive seconds, --page-stall-at none below 0", file=sys.stderr)
        return 2
    config = SyncBenchConfig(
        duration_s=args.duration,
        sinks=sinks,
        sources=sources,
        size=args.size,
        page_lip_sync=args.page_lip_sync,
        page_stalls_at_s=stalls_at,
        page_stall_s=args.page_stall,
    )
    result = asyncio.run(run_sync_bench(config))
    print_table(result)
    write_json(args.json, result)
    return 0


def run_viewers(args: argparse.Namespace) -> int:
    from benchmarks.viewers import ViewersBenchConfig, print_viewers_table, run_viewers_bench

    try:
        width, height = parse_size(args.size)
        counts = tuple(int(part) for part in args.counts.split(","))
    except ValueError as exc:
        print(f"avatar bench viewers: {exc}", file=sys.stderr)
        return 2
    if not counts or min(counts) < 1:
        print("avatar bench viewers: --counts must be positive numbers, e.g. 1,3,10", file=sys.stderr)
        return 2
    config = ViewersBenchConfig(counts=counts, width=width, height=height, duration_s=args.duration, janus=args.janus)
    result = asyncio.run(run_viewers_bench(config))
    print_viewers_table(result)
    write_json(args.json, result)
    return 1 if any("error" in run for run in result["runs"]) else 0


def run_transport(args: argparse.Namespace) -> int:
    from benchmarks.transport import TransportBenchConfig, print_table, run_transport_bench

    try:
        width, height = parse_size(args.size)
    except ValueError as exc:
        print(f"avatar bench transport: {exc}", file=sys.stderr)
        return 2
    if args.impair:
        from benchmarks.harness.impairment import ImpairmentSpec

        try:
            ImpairmentSpec.parse(args.impair)
        except ValueError as exc:
            print(f"avatar bench transport: --impair: {exc}", file=sys.stderr)
            return 2
    config = TransportBenchConfig(
        codec=args.codec, width=width, height=height, fps=args.fps, duration_s=args.duration, impair=args.impair
    )
    result = asyncio.run(run_transport_bench(config))
    print_table(result)
    write_json(args.json, result)
    return 0 if "error" not in result else 1
