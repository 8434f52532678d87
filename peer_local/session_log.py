"""The session log: one JSON line per turn (what was heard, what the clone said, timings), appended and
flushed to disk after every turn so nothing is lost if a process dies. ``avatar log`` prints it."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import platformdirs

from media.protocol import DataMessage, Decision, Metrics, Transcript, Turn

logger = logging.getLogger(__name__)


def default_log_path() -> Path:
    return platformdirs.user_data_path("avatar") / "logs" / time.strftime("session-%Y-%m-%d.jsonl")


@dataclass
class _Entry:
    turn_id: str
    heard: str
    heard_at: float
    language: str | None
    said: str = ""
    state: str = "not answered"
    decision: str | None = None  # why it was or was not answered ("answered (name)", "not addressed", ...)
    timings_ms: dict[str, float] = field(default_factory=dict)


class SessionLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: TextIO | None = path.open("a", encoding="utf-8")
        self._open: dict[str, _Entry] = {}
        self.lines_written = 0

    def heard(self, transcript: Transcript) -> None:
        """A transcript went to the avatar: any turn still open is written as it stands."""
        for turn_id in list(self._open):
            self._write(turn_id, "interrupted" if self._open[turn_id].said else "not answered")
        sent = transcript.sent_at or time.time()
        self._open[transcript.turn_id] = _Entry(transcript.turn_id, transcript.text, sent, transcript.language)

    def on_message(self, message: DataMessage) -> None:
        if isinstance(message, Decision) and message.turn_id in self._open:
            entry = self._open[message.turn_id]
            entry.decision = message.reason + (f" ({message.why})" if message.why else "")
            if not message.answered:
                self._write(message.turn_id, "not answered")
        elif isinstance(message, Turn) and message.turn_id in self._open:
            entry = self._open[message.turn_id]
            if message.text:
                entry.said = message.text
            if message.state == "done":
                entry.state = "answered"
                if entry.timings_ms:
                    self._write(message.turn_id, "answered")
        elif isinstance(message, Metrics) and message.turn_id in self._open:
            entry = self._open[message.turn_id]
            entry.timings_ms.update(message.values)
            if entry.state == "answered":
                self._write(message.turn_id, "answered")

    def _write(self, turn_id: str, state: str) -> None:
        entry = self._open.pop(turn_id)
        record: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(entry.heard_at)),
            "turn_id": entry.turn_id,
            "heard": entry.heard,
            "language": entry.language,
            "said": entry.said,
            "state": state,
            "decision": entry.decision,
            "timings_ms": {k: round(v, 1) for k, v in entry.timings_ms.items()},
        }
        if self._file is None:
            return
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())  # on disk now: a killed process loses nothing already written
        self.lines_written += 1

    def close(self) -> None:
        for turn_id in list(self._open):
            entry = self._open[turn_id]
            self._write(
                turn_id, entry.state if entry.state == "answered" else "interrupted" if entry.said else "not answered"
            )
        if self._file is not None:
            self._file.close()
            self._file = None


def read_log(path: Path) -> list[dict[str, Any]]:
    """The log's records; a torn last line (a crash mid-write) is skipped, never fatal."""
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            logger.warning("%s:%d: unreadable line skipped", path, number)
    return records


def format_record(record: dict[str, Any]) -> str:
    timings = record.get("timings_ms") or {}
    first = timings.get("first_audio_frame_sent_ms")
    when = str(record.get("time", ""))[11:19]
    lines = [f"{when}  heard: {record.get('heard', '')}"]
    said = record.get("said") or f"({record.get('decision') or record.get('state', '')})"
    lines.append(f"{'':8}  said:  {said}" + (f"   [first audio {first:.0f} ms]" if first else ""))
    return "\n".join(lines)
