"""``avatar bench e2e``: spoken questions in, the avatar's answer out, timed at the local peer.

Runs ``avatar demo`` (embedded CPU backends) as a child process with generated questions as its input and the
avatar's frames stamped (benchmarks/harness/stamped_demo.py), and reports per turn the end of the question -> first avatar audio and -> first speaking video frame at the local
peer, and the A/V offset of the received answer.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from benchmarks.harness.processes import demo_metrics
from benchmarks.harness.speech import conversation

QUESTIONS = [
    "What time is the meeting tomorrow?",
    "Can you send me the report?",
    "How was your weekend?",
    "Who is leading the project?",
    "When will the prototype be ready?",
    "Shall we wrap up now?",
]
GAP_S = 9.0  # room for an answer to start (it is cut by the next question, which is fine: only its start is timed)


async def run_e2e_bench() -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="avatar-bench-e2e-"))
    questions = conversation(workdir / "questions.wav", QUESTIONS, gap_s=GAP_S, lead_s=2.0)
    duration = 2.0 + len(QUESTIONS) * (GAP_S + 3.0) + 2.0
    report = await demo_metrics(
        *("--input", str(questions), "--camera", "none", "--mic-out", "none"),
        *("--duration", str(duration)),
        metrics=workdir / "metrics.json",
        log_path=workdir / "demo.log",
        timeout_s=duration + 180,
        module="benchmarks.harness.stamped_demo",
    )
    if "error" in report:
        return report
    return {"bench": "e2e", "questions": len(QUESTIONS), **report, "logs": str(workdir)}


def print_e2e_table(result: dict[str, Any]) -> None:
    if "error" in result:
        print(f"e2e bench failed: {result['error']}")
        return
    for key, label in (
        ("end_of_speech_to_first_audio_ms", "end of speech -> first avatar audio"),
        ("end_of_speech_to_first_speaking_video_ms", "end of speech -> first speaking video"),
        ("answer_av_offset_ms", "A/V offset of the answer (audio - video)"),
    ):
        s = result[key]
        figures = f"p50 {s['p50']:.0f} ms, p95 {s['p95']:.0f} ms (n={s['count']})" if s["count"] else "-"
        print(f"{label:<42} {figures}")
