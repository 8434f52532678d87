"""``avatar bench meeting``: a scripted multi-party meeting played into ``avatar demo --answer addressed``.

Three espeak-ng voices talk; some lines address the clone by name (or an ASR spelling of it), one follows up its
answer, one is a short noise, one pauses mid-sentence, one overlaps the previous speaker. The demo runs once
per end-of-turn detector (silence, smart-turn) and the run is scored from its metrics JSON: answered when
addressed, answered when not, talk-over events (the clone's voice starting while a scripted speaker speaks),
lines cut into several turns, and end of speech -> first clone audio for addressed turns, beside the naive chain
of the same models measured in the same run (benchmarks/naive_chain.py) as a ratio.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.harness.processes import demo_metrics
from benchmarks.harness.speech import espeak, read_wav, write_wav
from benchmarks.naive_chain import END_SILENCE_MS, NaiveChain
from benchmarks.turn import ratio
from media.measure import summary_ms
from peer_local.asr import FasterWhisperTranscriber
from peer_local.asr.base import AsrResult
from peer_local.audio_input.base import ASR_RATE
from peer_local.audio_input.file_source import read_file
from peer_local.settings import ListeningSettings
from peer_remote.backends import build_llm, build_tts
from peer_remote.settings import RemoteSettings

RATE = 22_050
VOICES = {"A": "en-us+m3", "B": "en-us+f3", "C": "en-gb+m7"}


@dataclass(frozen=True)
class Line:
    speaker: str
    parts: tuple[str, ...]  # more than one: the speaker pauses PAUSE_S between them, mid-sentence
    addressed: bool = False  # the clone should answer (its name, a follow-up, ...)
    gap_s: float = 1.5  # silence after the line (room for an answer after addressed lines)
    overlap_s: float = 0.0  # starts this long before the previous line ends


PAUSE_S = 0.8
PRE_ROLL_S = 0.2  # what the end-of-turn detector keeps from before speech began (TurnSettings.pre_roll_s)
SCRIPT = (
    Line("A", ("Good morning everyone, let us start with the release.",)),
    Line("B", ("The build is green and all the tests pass.",)),
    Line("A", ("Alex, can you give us a short update on the backend?",), addressed=True, gap_s=10.0),
    Line("B", ("And when will the migration be finished?",), addressed=True, gap_s=10.0),  # a follow-up
    Line("C", ("Hm.",)),
    Line("B", ("So the plan for next week is to", "review the budget with the team.")),
    Line("C", ("Yes, I agree with that plan.",), overlap_s=0.6),
    Line("A", ("Alec, what do you think about the budget?",), addressed=True, gap_s=10.0),
    Line("C", ("Let me share my screen now.",)),
    Line("B", ("Alex, could you summarize what we decided today?",), addressed=True, gap_s=10.0),
    Line("A", ("Great, thanks everyone, see you tomorrow.",), gap_s=3.0),
)


def render_script(workdir: Path, lead_s: float = 2.0) -> tuple[Path, list[dict[str, Any]]]:
    """The meeting as one WAV, and each line's [start, end] in seconds of that file."""
    track = np.zeros(int(lead_s * RATE), np.float32)
    cursor = previous_end = lead_s
    placed: list[dict[str, Any]] = []
    for i, line in enumerate(SCRIPT):
        pieces: list[np.ndarray] = []
        for j, part in enumerate(line.parts):
            samples, rate = read_wav(espeak(part, workdir / f"line{i}-{j}.wav", voice=VOICES[line.speaker]))
            assert rate == RATE
            if j:
                pieces.append(np.zeros(int(PAUSE_S * RATE), np.int16))
            pieces.append(samples)
        audio = np.concatenate(pieces).astype(np.float32)
        start = max(0.0, previous_end - line.overlap_s) if line.overlap_s else cursor
        begin = int(start * RATE)
        if begin + audio.size > track.size:
            track = np.pad(track, (0, begin + audio.size - track.size))
        track[begin : begin + audio.size] += audio
        end = start + audio.size / RATE
        placed.append(
            {
                "line": i,
                "speaker": line.speaker,
                "text": " ".join(line.parts),
                "addressed": line.addressed,
                "mid_sentence_pause": len(line.parts) > 1,
                "start_s": round(start, 3),
                "end_s": round(end, 3),
            }
        )
        previous_end, cursor = end, max(cursor, end + line.gap_s)
        track = np.pad(track, (0, max(0, int(cursor * RATE) - track.size)))
    mixed = np.clip(track, -32768, 32767).astype(np.int16)
    return write_wav(workdir / "meeting.wav", mixed, RATE), placed


def score(lines: list[dict[str, Any]], report: dict[str, Any]) -> dict[str, Any]:
    """Score one demo run (its metrics JSON) against the script."""
    decisions = {d["turn_id"]: d for d in report.get("decisions", [])}
    by_line: dict[int, list[dict[str, Any]]] = {line["line"]: [] for line in lines}
    for turn in report.get("turns", []):
        overlaps = [
            (min(turn["end_s"], line["end_s"]) - max(turn["start_s"], line["start_s"]), line["line"]) for line in lines
        ]
        best, index = max(overlaps)
        if best > 0:
            by_line[index].append(turn)
    addressed = [line for line in lines if line["addressed"]]
    others = [line for line in lines if not line["addressed"]]

    def answered(line: dict[str, Any]) -> bool:
        return any(decisions.get(t["turn_id"], {}).get("answered") for t in by_line[line["line"]])

    latencies = [
        t["end_of_speech_to_first_audio_ms"]
        for line in addressed
        for t in by_line[line["line"]]
        if decisions.get(t["turn_id"], {}).get("answered") and "end_of_speech_to_first_audio_ms" in t
    ]
    talk_over = [
        stretch
        for stretch in report.get("avatar_sounding_s", [])
        if any(line["start_s"] < stretch[0] < line["end_s"] for line in lines)
    ]
    answered_addressed = sum(answered(line) for line in addressed)
    early = report.get("early_transcripts", {})
    return {
        "early_transcripts_sent": len(early.get("sent", [])),
        "early_transcripts_retracted": len(early.get("retracted", [])),
        "answered_when_addressed": answered_addressed,
        "answered_when_addressed_share": round(answered_addressed / len(addressed), 2) if addressed else None,
        "addressed_lines": len(addressed),
        "answered_when_not_addressed": sum(answered(line) for line in others),
        "not_addressed_lines": len(others),
        "talk_over_events": len(talk_over),
        "talk_over_at_s": [s[0] for s in talk_over],
        "lines_cut_into_several_turns": sum(len(by_line[line["line"]]) > 1 for line in lines),
        "mid_sentence_pause_lines_cut": sum(
            len(by_line[line["line"]]) > 1 for line in lines if line["mid_sentence_pause"]
        ),
        "end_of_speech_to_first_audio_ms": summary_ms(latencies),
        "lines": [
            {
                **line,
                "heard": [t["text"] for t in by_line[line["line"]]],
                "decisions": [decisions.get(t["turn_id"], {}).get("reason") for t in by_line[line["line"]]],
            }
            for line in lines
        ],
    }


async def run_demo(
    workdir: Path, meeting: Path, duration_s: float, detector: str, early_answer: bool = True
) -> dict[str, Any]:
    return await demo_metrics(
        *("--input", str(meeting), "--camera", "none", "--mic-out", "none", "--control-port", "0"),
        *("--session-log", "none", "--answer", "addressed", "--turn-detector", detector),
        "--early-answer" if early_answer else "--no-early-answer",
        *("--duration", str(duration_s)),
        metrics=workdir / f"metrics-{detector}.json",
        log_path=workdir / f"demo-{detector}.log",
        timeout_s=duration_s + 180,
        keep_env=("AVATAR_SMART_TURN_MODEL",),
    )


async def naive_chain(meeting: Path, lines: list[dict[str, Any]]) -> dict[str, Any]:
    """The addressed lines through the same models one after another in this process (after the demo ended:
    nothing else runs): 320 ms of silence, ASR of the line, the LLM to its first sentence, TTS of that sentence.
    The ASR is faster-whisper's own ``transcribe``; the same chain with the product's short-window ASR call is
    reported beside it (``with_the_products_asr_call``)."""
    listening = ListeningSettings.load({})
    transcriber = FasterWhisperTranscriber(listening.asr)
    speaking = RemoteSettings.load({})
    llm, tts = build_llm(speaking), build_tts(speaking)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, transcriber.load)
    await llm.load()
    await tts.load()
    chain = NaiveChain.for_settings(speaking, llm, tts)
    audio = read_file(meeting)

    def turn_audio(line: dict[str, Any]) -> np.ndarray:
        """The line as the detector cuts it: pre-roll before the speech, a short tail after."""
        begin, end = int((line["start_s"] - PRE_ROLL_S) * ASR_RATE), int((line["end_s"] + 0.1) * ASR_RATE)
        return audio[max(0, begin) : end]

    async def chain_figures(transcribe: Callable[[np.ndarray], AsrResult]) -> dict[str, Any]:
        await chain.spoken_turn_ms(transcribe, turn_audio(lines[0]))  # warm, as the demo is by its earlier turns
        per_line = []
        for line in (line for line in lines if line["addressed"]):
            figures = await chain.spoken_turn_ms(transcribe, turn_audio(line))
            if figures is not None:
                per_line.append({"line": line["line"], **asdict(figures)})
        return {
            "end_of_speech_to_first_audio_ms": summary_ms([float(f["total_ms"]) for f in per_line]),
            "end_silence_ms": END_SILENCE_MS,
            "per_line": per_line,
        }

    naive = await chain_figures(transcriber.transcribe_full_window)
    naive["asr"] = "faster-whisper transcribe (30 s window)"
    same_asr = await chain_figures(transcriber.transcribe)
    same_asr["asr"] = f"the product's call ({listening.asr.window_s:.0f} s window)"
    naive["with_the_products_asr_call"] = same_asr
    return naive


def ratios(run: dict[str, Any], naive: dict[str, Any]) -> dict[str, float | None]:
    product, baseline = run["end_of_speech_to_first_audio_ms"], naive["end_of_speech_to_first_audio_ms"]
    return {f"ratio_to_naive_chain_{q}": ratio(product[q], baseline[q]) for q in ("p50", "p95")}


async def run_meeting_bench(
    detectors: tuple[str, ...] = ("silence", "smart-turn"), early_answer: bool = True
) -> dict[str, Any]:
    """``early_answer``: the demo's ``--early-answer`` (the avatar prepares an answer during the end-of-turn wait)."""
    workdir = Path(tempfile.mkdtemp(prefix="avatar-bench-meeting-"))
    meeting, lines = render_script(workdir)
    duration_s = lines[-1]["end_s"] + 6.0
    result: dict[str, Any] = {
        "bench": "meeting",
        "script_s": round(duration_s, 1),
        "early_answer": early_answer,
        "logs": str(workdir),
    }
    for detector in detectors:
        report = await run_demo(workdir, meeting, duration_s, detector, early_answer)
        result[detector] = report if "error" in report else score(lines, report)
    naive = await naive_chain(meeting, lines)
    result["naive_chain"] = naive
    for detector in detectors:
        if "error" not in result[detector]:
            result[detector].update(ratios(result[detector], naive))
    return result


def print_meeting_table(result: dict[str, Any]) -> None:
    for detector in ("silence", "smart-turn"):
        run = result.get(detector)
        if run is None:
            continue
        if "error" in run:
            print(f"{detector}: {run['error']}")
            continue
        figures = _latency_figures(run)
        print(f"--turn-detector {detector}")
        print(f"  answered when addressed       {run['answered_when_addressed']}/{run['addressed_lines']}")
        print(f"  answered when not addressed   {run['answered_when_not_addressed']}/{run['not_addressed_lines']}")
        print(f"  talk-over events              {run['talk_over_events']}")
        print(f"  lines cut into several turns  {run['lines_cut_into_several_turns']}")
        print(f"  mid-sentence pauses cut       {run['mid_sentence_pause_lines_cut']}")
        print(
            f"  early transcripts             {run.get('early_transcripts_sent', 0)} sent, "
            f"{run.get('early_transcripts_retracted', 0)} retracted"
        )
        print(f"  end of speech -> first audio  {figures}")
        print(
            f"  / naive chain                 p50 {run.get('ratio_to_naive_chain_p50')}x, "
            f"p95 {run.get('ratio_to_naive_chain_p95')}x"
        )
    naive = result.get("naive_chain")
    if naive is not None:
        print(
            "naive chain (320 ms silence + ASR + LLM to its first sentence + TTS, one after another): "
            + _latency_figures(naive)
        )
        same = naive.get("with_the_products_asr_call")
        if same is not None:
            print(f"  the same with the product's ASR call ({same['asr']}): " + _latency_figures(same))


def _latency_figures(run: dict[str, Any]) -> str:
    latency = run["end_of_speech_to_first_audio_ms"]
    return f"p50 {latency['p50']} ms, p95 {latency['p95']} ms (n={latency['count']})"
