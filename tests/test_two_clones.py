"""Two clones on one box (issue 19): one process serves two rooms, sharing the LLM, the TTS and the face models, and
nothing of one room's clone (persona, voice reference, face, conversation, take-over) ever shows in the other.

Real signaling, real aiortc peers on loopback, the embedded LLM and portrait face; the voice is Fish Speech's API
(the stand-in of tests/fish_speech_stand_in.py) because only it takes a person's reference clip.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from benchmarks.harness.speech import espeak
from media.profile.face_geometry import default_portrait, load_image, prepare_portrait
from media.profile.persona import TEMPLATE
from media.protocol import Control, DataMessage, Decision, Transcript, Turn
from peer_local.profile.store import Profile
from peer_local.profile.sync import ProfileSender
from peer_local.profile.voice_enroll import PASSAGE
from peer_local.service import LocalPeer
from peer_remote.rooms import RoomHost
from peer_remote.service import RemotePeer
from peer_remote.settings import RemoteSettings
from peer_remote.tts.fish import FishSpeechSynthesizer
from signaling.server import SignalingService
from tests.collecting_sink import CollectingSink
from tests.fish_speech_stand_in import FishSpeechStandIn
from tests.peer_helpers import local_peer, peer_fields, running
from tests.test_profile_sync import wait_status

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]  # two rooms of peers and models on two cores

SIZE = 128


@dataclass
class FrameKeepingSink(CollectingSink):
    """Also keeps the latest decoded frame (RGB)."""

    last_rgb: np.ndarray | None = None

    def on_video(self, frame: av.VideoFrame, arrival: float) -> None:
        self.last_rgb = frame.to_ndarray(format="rgb24")
        super().on_video(frame, arrival)


@dataclass
class Person:
    """One room's person: a profile of their own, a laptop peer, and what their room's clone said."""

    room: str
    name: str
    profile: Profile
    sink: FrameKeepingSink
    local: LocalPeer
    said: list[DataMessage]
    heard: asyncio.Event  # set whenever the room's clone says something

    def hear(self, message: DataMessage) -> None:
        self.said.append(message)
        self.heard.set()

    async def wait_said(self, done: object, timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s):
            while not done(self.said):  # type: ignore[operator]
                self.heard.clear()
                await self.heard.wait()


def make_profile(root: Path, name: str, face: np.ndarray, passage: str) -> Profile:
    me = Profile.open(str(root / name.split()[0].lower()), create=True)
    cv2.imwrite(str(me.file("face.png")), cv2.cvtColor(face, cv2.COLOR_RGB2BGR))
    me.file("persona.toml").write_text(TEMPLATE.replace("Alex Example", name))
    espeak(passage, me.file("voice.wav"))
    me.file("voice.txt").write_text(passage)
    me.write_manifest()
    return me


@pytest.fixture
def host(signaling: SignalingService, token: str, fish: FishSpeechStandIn, tmp_path: Path) -> RoomHost:
    settings = RemoteSettings.load(
        {
            **peer_fields(signaling, token),
            "source": "avatar",
            "width": SIZE,
            "height": SIZE,
            "max_tokens": 12,
            "fps": 10,  # two rooms of encoders and decoders in one test process: spare the shared CPU
            "tts": "fish",
            "fish_url": fish.url,
            "profile_cache_dir": tmp_path / "cache",  # one cache for both rooms: files are keyed by content
            "face_cache_dir": tmp_path / "faces",
        }
    )
    return RoomHost(settings, ["alpha", "beta"])


def person(signaling: SignalingService, token: str, host: RoomHost, room: str, profile: Profile, name: str) -> Person:
    sink = FrameKeepingSink()
    who = Person(room, name, profile, sink, local_peer(signaling, token, sink, room=room), [], asyncio.Event())
    host.peers[room].avatar.said.connect(who.hear)  # a second listener beside the room's fan-out
    return who


def brighter(image: np.ndarray) -> np.ndarray:
    return np.clip(image.astype(np.int16) + 40, 0, 255).astype(np.uint8)


def distance(frame: np.ndarray, face_png: Path) -> float:
    """Mean absolute difference between a received frame and the portrait prepared from ``face_png``."""
    prepared, _ = prepare_portrait(load_image(face_png), SIZE, SIZE)
    return float(np.abs(frame.astype(np.int16) - prepared.astype(np.int16)).mean())


async def frames_after(sink: FrameKeepingSink, count: int) -> np.ndarray:
    seen = len(sink.video_pts)
    await sink.wait_until(lambda s: len(s.video_pts) >= seen + count, timeout_s=30)
    assert sink.last_rgb is not None
    return sink.last_rgb


def turn_done(turn_id: str) -> object:
    return lambda said: any(isinstance(m, Turn) and m.turn_id == turn_id and m.state == "done" for m in said)


def decided(turn_id: str) -> object:
    return lambda said: any(isinstance(m, Decision) and m.turn_id == turn_id for m in said)


def room_of(peer: RemotePeer) -> str:
    return peer.settings.room


async def test_two_rooms_each_speak_look_and_answer_as_their_own_person_only(
    signaling: SignalingService, token: str, fish: FishSpeechStandIn, host: RoomHost, tmp_path: Path
) -> None:
    portrait = default_portrait()
    olena = make_profile(tmp_path, "Olena Testenko", portrait, f"{PASSAGE} Olena.")
    mykola = make_profile(tmp_path, "Mykola Probenko", np.ascontiguousarray(portrait[:, ::-1]), f"{PASSAGE} Mykola.")
    alpha = person(signaling, token, host, "alpha", olena, "Olena Testenko")
    beta = person(signaling, token, host, "beta", mykola, "Mykola Probenko")
    a, b = host.peers["alpha"], host.peers["beta"]
    assert a.avatar.speaking is not None and b.avatar.speaking is not None
    assert a.avatar.speaking.face is not b.avatar.speaking.face  # shared models, never a shared face
    assert a.avatar.responder is not None and b.avatar.responder is not None
    assert a.avatar.responder.llm is b.avatar.responder.llm  # one model loaded for both rooms

    async with running(host.run):
        async with asyncio.timeout(120):
            await a.connected.wait()
            await b.connected.wait()
        async with running(alpha.local.run), running(beta.local.run):
            senders = [ProfileSender(alpha.local, olena), ProfileSender(beta.local, mykola)]
            await asyncio.gather(*(wait_status(s, "ready", timeout_s=120) for s in senders))

            # each room's persona is its own person's, and only theirs
            for who, other, peer in ((alpha, beta, a), (beta, alpha, b)):
                assert peer.avatar.responder is not None
                prompt = peer.avatar.responder.conversation.messages("en")
                system = " ".join(m.content for m in prompt)
                assert who.name in system and other.name not in system, room_of(peer)
                assert peer.avatar.decider.names[0] == who.name

            # each room's viewers see their own person's face
            for who, other in ((alpha, beta), (beta, alpha)):
                frame = await frames_after(who.sink, 10)
                own = distance(frame, who.profile.file("face.png"))
                theirs = distance(frame, other.profile.file("face.png"))
                assert own < theirs * 0.7, (who.room, own, theirs)

            # both rooms ask at once; each answer is spoken in its own person's voice
            assert alpha.local.send(Transcript(turn_id="a1", text="What is your name?", language="en"))
            assert beta.local.send(Transcript(turn_id="b1", text="Where do you live?", language="en"))
            await asyncio.gather(alpha.wait_said(turn_done("a1"), 240), beta.wait_said(turn_done("b1"), 240))

    # both rooms' voices went through the box's one Fish Speech client, closed when the host stopped
    assert host.backends is not None and isinstance(host.backends.tts, FishSpeechSynthesizer)
    assert a.avatar.responder.tts.connections is b.avatar.responder.tts.connections is host.backends.tts.connections  # type: ignore[attr-defined]
    assert host.backends.tts.connections.closed

    clip = {who.room: hashlib.sha256(who.profile.file("voice.wav").read_bytes()).hexdigest() for who in (alpha, beta)}
    texts = {
        who.room: next(m.text or "" for m in who.said if isinstance(m, Turn) and m.state == "done")
        for who in (alpha, beta)
    }
    assert texts["alpha"] and texts["beta"], texts
    voiced: dict[str, set[str]] = {"alpha": set(), "beta": set()}
    for request in fish.requests:
        references = [hashlib.sha256(r["audio"]).hexdigest() for r in request["references"]]
        rooms = [room for room, text in texts.items() if request["text"] in text]
        if len(rooms) == 1:
            voiced[rooms[0]].update(references)
    assert voiced == {"alpha": {clip["alpha"]}, "beta": {clip["beta"]}}

    # each room's subscribers heard only their own room's turns
    for who, own_turn in ((alpha, "a1"), (beta, "b1")):
        turn_ids = {m.turn_id for m in who.said if isinstance(m, Turn)}
        assert turn_ids == {own_turn}, who.room


async def test_take_over_and_a_new_profile_in_one_room_leave_the_other_room_alone(
    signaling: SignalingService, token: str, host: RoomHost, tmp_path: Path
) -> None:
    portrait = default_portrait()
    olena = make_profile(tmp_path, "Olena Testenko", portrait, f"{PASSAGE} Olena.")
    mykola = make_profile(tmp_path, "Mykola Probenko", np.ascontiguousarray(portrait[:, ::-1]), f"{PASSAGE} Mykola.")
    renamed = make_profile(tmp_path / "new", "Olena Renamed", brighter(portrait), f"{PASSAGE} Olena again.")
    alpha = person(signaling, token, host, "alpha", olena, "Olena Testenko")
    beta = person(signaling, token, host, "beta", mykola, "Mykola Probenko")
    a, b = host.peers["alpha"], host.peers["beta"]

    async with running(host.run):
        async with asyncio.timeout(120):
            await a.connected.wait()
            await b.connected.wait()
        async with running(beta.local.run):
            async with running(alpha.local.run):
                senders = [ProfileSender(alpha.local, olena), ProfileSender(beta.local, mykola)]
                await asyncio.gather(*(wait_status(s, "ready", timeout_s=120) for s in senders))
                assert b.avatar.speaking is not None
                beta_face = b.avatar.speaking.face

                # the person takes over in room alpha
                async with asyncio.timeout(30):
                    await alpha.local.wait_session()
                    a.avatar.control_changed.clear()
                    assert alpha.local.send(Control(mode="person"))
                    await a.avatar.control_changed.wait()
                assert a.avatar.control.clone_paused and not b.avatar.control.clone_paused

                # alpha's clone stays quiet; beta's still answers
                assert alpha.local.send(Transcript(turn_id="a2", text="Olena, are you there?", language="en"))
                assert beta.local.send(Transcript(turn_id="b2", text="Mykola, are you there?", language="en"))
                await asyncio.gather(alpha.wait_said(decided("a2"), 60), beta.wait_said(decided("b2"), 60))
                assert (a.avatar.decisions[-1].answered, a.avatar.decisions[-1].reason) == (False, "person in control")
                assert b.avatar.decisions[-1].answered
                assert not any(isinstance(m, Control) for m in beta.said)  # beta's viewers never saw the take-over

            # alpha's laptop comes back with an updated profile: a new name and face there, nothing changes in beta
            again = local_peer(signaling, token, FrameKeepingSink(), room="alpha")
            ProfileSender(again, renamed)
            async with running(again.run):
                await alpha.wait_said(lambda said: a.avatar.profiles.preparations >= 2, 120)
            assert a.avatar.decider.names[0] == "Olena Renamed"
            assert b.avatar.decider.names[0] == "Mykola Probenko"
            assert b.avatar.speaking.face is beta_face
            assert b.avatar.profiles.preparations == 1
            assert b.avatar.responder is not None
            assert "Olena" not in " ".join(m.content for m in b.avatar.responder.conversation.messages("en"))
