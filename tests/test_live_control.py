"""Live control: take-over switches what the virtual devices get within one frame, the control endpoint
drives it, the avatar stops answering, and the session log survives a killed process."""

from __future__ import annotations

import asyncio
import os
import pty
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import av
import numpy as np
import pytest

from avatar.main import main as avatar_main
from benchmarks.harness.speech import write_wav
from peer_local.control import LiveControl
from peer_local.control_http import ControlServer
from peer_local.control_keys import KeyCommands
from peer_local.service import LocalPeer
from peer_local.session_log import read_log
from peer_local.settings import LocalSettings
from peer_local.sinks.recorder import RecorderSink
from peer_local.sinks.switch import SourceSwitch
from peer_remote.service import RemotePeer
from signaling.server import SignalingService
from tests.collecting_sink import CollectingSink
from tests.peer_helpers import peer_fields, running

ROOT = Path(__file__).resolve().parent.parent
GREEN = (30, 200, 40)


class WebcamStandIn:
    """Stands in for the person's webcam (none on CI): solid green frames at 25 fps into the switch."""

    def __init__(self, switch: SourceSwitch) -> None:
        self.switch = switch
        switch.person_has_video = True  # what PersonInCharge sets once a real webcam opens
        self.sent = 0

    async def run(self, stop: asyncio.Event) -> None:
        image = np.zeros((240, 320, 3), np.uint8)
        image[:] = GREEN
        while not stop.is_set():
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            self.switch.person_video(frame, time.time())
            self.sent += 1
            await asyncio.sleep(0.04)  # the webcam's own frame period: it is a frame source, not a wait


class SourceProbe(CollectingSink):
    """Records, per delivered video frame, whether it came from the webcam (green) or the avatar."""

    def __init__(self) -> None:
        super().__init__()
        self.sources: list[tuple[float, str]] = []

    def on_video(self, frame: av.VideoFrame, arrival: float) -> None:
        pixel = frame.to_ndarray(format="rgb24")[10, 10]
        green = abs(int(pixel[1]) - 200) < 30 and int(pixel[0]) < 80
        self.sources.append((time.monotonic(), "webcam" if green else "avatar"))
        super().on_video(frame, arrival)


@pytest.mark.slow
async def test_take_over_switches_devices_within_one_frame_and_the_avatar_stops_answering(
    signaling: SignalingService, token: str, remote: RemotePeer, tmp_path: Path
) -> None:
    probe = SourceProbe()
    recording = tmp_path / "meeting.mp4"
    recorder = RecorderSink(recording)
    switch = SourceSwitch([probe, recorder])
    local = LocalPeer(LocalSettings.load(peer_fields(signaling, token)), [switch])
    control = LiveControl(local, switch)
    webcam = WebcamStandIn(switch)
    async with running(local.run), running(webcam.run):
        await probe.wait_until(lambda s: len(s.stamp_indices) > 25)
        switched_at = time.monotonic()
        control.take_over()
        await probe.wait_until(lambda s: sum(1 for t, _ in s.sources if t > switched_at) >= 25)
        after = [source for t, source in probe.sources if t > switched_at]
        assert set(after) == {"webcam"}  # the very first frame after the switch is the webcam's
        async with asyncio.timeout(5):
            while remote.avatar.control.mode != "person":
                remote.avatar.control_changed.clear()
                await remote.avatar.control_changed.wait()
        assert remote.avatar.interrupts_received >= 1  # the current answer is dropped
        handed_back = time.monotonic()
        control.hand_back()
        await probe.wait_until(lambda s: sum(1 for t, _ in s.sources if t > handed_back) >= 10)
        assert {source for t, source in probe.sources if t > handed_back} == {"avatar"}
    await switch.close()
    with av.open(str(recording)) as container:
        colours = {
            "webcam" if abs(int(f.to_ndarray(format="rgb24")[10, 10][1]) - 200) < 30 else "avatar"
            for f in container.decode(video=0)
        }
    assert colours == {"webcam", "avatar"}  # the recorder (what the meeting sees) shows the webcam stand-in too


def audio_frame(level: int) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(np.full((1, 960), level, np.int16), format="s16", layout="mono")
    frame.sample_rate = 48_000
    return frame


def test_without_a_webcam_take_over_switches_the_sound_and_keeps_the_avatar_picture_live() -> None:
    seen = CollectingSink()
    switch = SourceSwitch([seen])
    switch.on_connection(True)
    avatar_picture = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
    switch.select("person")
    assert seen.connections == [True, True]
    switch.on_video(avatar_picture, 0.0)
    switch.on_audio(audio_frame(1000), 0.0)  # the avatar's (idle) sound: not the meeting's any more
    switch.person_audio(audio_frame(2000), 0.0)
    assert len(seen.video_sizes) == 1 and seen.audio_peaks == [2000]
    switch.on_connection(False)  # the avatar drops: the camera still follows it ("reconnecting...")
    assert seen.connections[-1] is False
    switch.select("avatar")
    switch.person_audio(audio_frame(2000), 0.0)
    switch.on_audio(audio_frame(1000), 0.0)
    assert seen.audio_peaks == [2000, 1000]


@pytest.mark.slow
async def test_the_control_endpoint_mutes_and_skips_and_the_remote_hears_it(
    signaling: SignalingService, token: str, remote: RemotePeer, tmp_path: Path
) -> None:
    local = LocalPeer(LocalSettings.load(peer_fields(signaling, token)), [CollectingSink()])
    control = LiveControl(local)
    server = ControlServer(control, 0, secret_dir=tmp_path)
    await server.start()
    base = f"http://127.0.0.1:{server.port}/control"
    try:
        headers = {"Authorization": f"Bearer {server.secret}"}  # what `avatar control` reads from the secret file
        async with running(local.run), aiohttp.ClientSession(headers=headers) as http:
            async with asyncio.timeout(15):
                session = await local.wait_session()
                await session.channel_open.wait()
            async with http.post(f"{base}/mute") as response:
                assert response.status == 200 and (await response.json())["muted"] is True
            async with asyncio.timeout(5):
                while not remote.avatar.control.muted:
                    remote.avatar.control_changed.clear()
                    await remote.avatar.control_changed.wait()
            async with http.post(f"{base}/skip") as response:
                assert (await response.json())["skips"] == 1
            async with http.post(f"{base}/launch-missiles") as response:
                assert response.status == 404
            async with http.get(base) as response:
                assert await response.json() == {
                    "mode": "clone",
                    "muted": True,
                    "answering": False,
                    "skips": 1,
                    "answer": "addressed",
                }
    finally:
        await server.stop()


def test_the_session_log_survives_a_killed_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "session.jsonl"
    child = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "session_log_writer.py"), str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "written"
    finally:
        child.kill()  # -9: no flush at exit, no close()
        child.wait(timeout=10)
    records = read_log(path)
    assert [r["heard"] for r in records] == ["question 0", "question 1", "question 2"]
    assert [r["said"] for r in records] == ["answer 0", "answer 1", "answer 2"]
    assert records[2]["timings_ms"] == {"first_audio_frame_sent_ms": 402.0} and records[0]["state"] == "answered"
    assert avatar_main(["log", str(path), "--last", "2"]) == 0
    out = capsys.readouterr().out
    assert "heard: question 1" in out and "said:  answer 2   [first audio 402 ms]" in out and "2 turns" in out


async def test_terminal_keys_act_show_every_change_and_give_the_terminal_back(
    signaling: SignalingService, token: str
) -> None:
    """Regression: the key reader left the user's terminal in cbreak mode (no echo) after the call ended."""
    master, slave = pty.openpty()
    saved = termios.tcgetattr(slave)
    shown: list[str] = []
    changed = asyncio.Event()

    def show(line: str) -> None:
        shown.append(line)
        changed.set()

    async def until(predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(5):
            while not predicate():
                changed.clear()
                await changed.wait()

    control = LiveControl(LocalPeer(LocalSettings.load(peer_fields(signaling, token)), [CollectingSink()]))
    modes: list[str] = []
    control.changed.connect(lambda c: modes.append(c.mode))  # another listener: both see every change
    with os.fdopen(slave, "r") as terminal:
        keys = KeyCommands(control, show, terminal)
        assert keys.start(asyncio.get_running_loop())
        try:
            assert not termios.tcgetattr(slave)[3] & termios.ICANON  # single keys, no Enter needed
            os.write(master, b"tm")  # two keys typed together both count
            await until(lambda: control.mode == "person" and len(shown) >= 3)
            assert control.muted and "YOU are on camera" in shown[-1]
            control.act("hand-back")  # what the control endpoint does: shown on the terminal too
            await until(lambda: "muted" in shown[-1])
            os.write(master, b"x")  # not a command: nothing happens
            os.write(master, b"m")
            await until(lambda: not control.muted)
            assert shown[-1].startswith("the clone is speaking for you")
        finally:
            keys.stop()
        assert termios.tcgetattr(slave) == saved  # echo and line editing are back
        assert len(control.changed) == 1  # the keys stopped listening; the other listener stays
        assert modes == ["person", "person", "clone", "clone"]
    os.close(master)


def test_without_a_terminal_no_keys_are_read(signaling: SignalingService, token: str) -> None:
    control = LiveControl(LocalPeer(LocalSettings.load(peer_fields(signaling, token)), [CollectingSink()]))
    with open(os.devnull) as not_a_terminal:
        assert KeyCommands(control, print, not_a_terminal).start(asyncio.new_event_loop()) is False


PERSON_MIC = """
import asyncio, numpy as np
from peer_local.audio_input.devices import resolve_input_device
from peer_local.person_sources import MicPassthrough
async def main():
    frames, enough = [], asyncio.Event()
    def deliver(frame, arrival):
        frames.append(frame)
        if sum(f.samples for f in frames) >= 48_000 * 3:
            enough.set()
    mic = MicPassthrough("pulse", deliver)
    mic.start(asyncio.get_running_loop())
    print("listening", flush=True)
    async with asyncio.timeout(20):
        await enough.wait()
    mic.stop()
    peak = max(int(np.abs(f.to_ndarray()).max()) for f in frames)
    print(int(resolve_input_device("pulse").default_samplerate), {f.sample_rate for f in frames}.pop(), peak, flush=True)
asyncio.run(main())
"""


def test_the_take_over_microphone_delivers_48khz_from_a_device_at_its_own_rate(
    pulseaudio: dict[str, str], tmp_path: Path
) -> None:
    """The person's real microphone (here the monitor of a private PulseAudio sink) reaches the switch."""
    t = np.arange(48_000) / 48_000
    tone = write_wav(tmp_path / "tone.wav", (np.sin(2 * np.pi * 440 * t) * 16_000).astype(np.int16), 48_000)
    env = {**pulseaudio, "PULSE_SOURCE": "avatar_mic.monitor", "PYTHONPATH": str(ROOT)}
    listening = subprocess.Popen(
        [sys.executable, "-c", PERSON_MIC], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert listening.stdout is not None and listening.stdout.readline().strip() == "listening"
        subprocess.run(["paplay", "--device=avatar_mic", str(tone)], env=pulseaudio, check=True, timeout=30)
        out, err = listening.communicate(timeout=30)
    finally:
        listening.kill()
    assert listening.returncode == 0, err
    _device_rate, frame_rate, peak = (int(v) for v in out.split())
    assert frame_rate == 48_000 and peak > 8_000  # the tone (peak 16 000) came through at the transport rate


def test_the_in_charge_flags_are_the_in_charge_settings() -> None:
    """`avatar local` and `avatar demo` pass every in-charge setting on as a flag; a field without one is caught."""
    from avatar.main import build_parser
    from peer_local.settings import InChargeSettings

    for command in ("local", "demo"):
        assert set(InChargeSettings.model_fields) <= set(vars(build_parser([command]).parse_args([command])))
