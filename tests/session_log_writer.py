"""Run by a test in a child process: log three turns through the session log, say so, then wait to be killed."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from media.protocol import Metrics, Transcript, Turn
from peer_local.session_log import SessionLog

log = SessionLog(Path(sys.argv[1]))
for n in range(3):
    turn = f"t{n}"
    log.heard(Transcript(turn_id=turn, text=f"question {n}", sent_at=1_800_000_000.0 + n))
    log.on_message(Turn(turn_id=turn, state="speaking", text=f"answer {n}"))
    log.on_message(Turn(turn_id=turn, state="done", text=f"answer {n}"))
    log.on_message(Metrics(turn_id=turn, values={"first_audio_frame_sent_ms": 400.0 + n}))
log.heard(Transcript(turn_id="t3", text="a question still open"))
print("written", flush=True)
threading.Event().wait()  # killed with -9 here: no close(), no atexit
