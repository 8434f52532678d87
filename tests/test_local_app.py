"""Guards the laptop's one composition root (peer_local/app.py): the parts `avatar local` and `avatar demo` share are
wired to each other by events and queries given at construction, not by overwriting each other's attributes."""

from __future__ import annotations

import av
import numpy as np

from media.protocol import Turn
from peer_local.app import LocalApp
from peer_local.settings import LocalSettings
from peer_local.turn_latency import SpeechOnsetProbe

QUIET = {"input": "none", "camera": "none", "mic_out": "none", "session_log": "none"}


async def test_what_is_heard_goes_to_the_avatar_only_while_the_clone_is_in_charge() -> None:
    app = LocalApp(LocalSettings.load(QUIET))
    try:
        assert app.sender.answering()
        app.in_charge.control.take_over()
        assert not app.sender.answering()
        app.in_charge.control.hand_back()
        assert app.sender.answering()
    finally:
        await app.close()


async def test_every_data_channel_listener_of_the_laptop_sees_each_message() -> None:
    probe = SpeechOnsetProbe()
    app = LocalApp(LocalSettings.load(QUIET), probe=probe)
    try:
        app.peer.message_received.emit(Turn(turn_id="t1", state="speaking"))
        assert app.sender.avatar_speaking and app.sender.current_turn == "t1"  # the transcript sender saw it
        loud = av.AudioFrame.from_ndarray(np.full((1, 960), 8_000, dtype=np.int16), format="s16", layout="mono")
        probe.on_audio(loud, 0.0)
        assert "t1" in probe.first_audio  # and so did the turn-latency probe: the loud frame is t1's answer
    finally:
        await app.close()
