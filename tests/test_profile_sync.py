"""Profile sync over a real data channel: the remote asks for what it lacks, checks and caches it, prepares
it once; a reconnect sends nothing again. Limits and content types are enforced."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks.harness.speech import espeak
from media.profile.face_geometry import default_portrait
from media.profile.persona import TEMPLATE
from media.protocol import DataMessage, ProfileChunk, ProfileFile, ProfileOffer, ProfileRequest, ProfileStatus
from peer_local.profile.store import Profile
from peer_local.profile.sync import ProfileSender
from peer_local.profile.voice_enroll import PASSAGE
from peer_remote.profile_receiver import LIMITS, ProfileCache, ProfileReceiver
from peer_remote.service import RemotePeer
from peer_remote.settings import RemoteSettings
from signaling.server import SignalingService
from tests.collecting_sink import CollectingSink
from tests.peer_helpers import local_peer, peer_fields, running


@pytest.fixture
def profile(tmp_path: Path) -> Profile:
    me = Profile.open(str(tmp_path / "me"), create=True)
    cv2.imwrite(str(me.file("face.png")), cv2.cvtColor(default_portrait(), cv2.COLOR_RGB2BGR))
    me.file("persona.toml").write_text(TEMPLATE.replace("Alex Example", "Olena Testenko"))
    espeak(PASSAGE, me.file("voice.wav"))
    me.file("voice.txt").write_text(PASSAGE)
    me.write_manifest()
    return me


async def wait_status(sender: ProfileSender, state: str, timeout_s: float = 60.0) -> ProfileStatus:
    async with asyncio.timeout(timeout_s):
        while sender.status is None or sender.status.state != state:
            sender.status_changed.clear()
            await sender.status_changed.wait()
    assert sender.status is not None
    return sender.status


@pytest.mark.slow
async def test_profile_syncs_once_is_prepared_once_and_is_not_sent_again(
    signaling: SignalingService, token: str, profile: Profile, tmp_path: Path
) -> None:
    settings = RemoteSettings.load(
        {
            **peer_fields(signaling, token),
            "source": "avatar",
            "width": 256,
            "height": 256,
            "profile_cache_dir": tmp_path / "cache",
            "face_cache_dir": tmp_path / "faces",
        }
    )
    remote = RemotePeer(settings)
    assert remote.avatar.speaking is not None
    original_face = remote.avatar.speaking.face
    async with running(remote.run):
        async with asyncio.timeout(60):
            await remote.connected.wait()
        local = local_peer(signaling, token, CollectingSink())
        sender = ProfileSender(local, profile)
        async with running(local.run):
            await wait_status(sender, "ready")
        assert sorted(sender.files_sent) == ["face.png", "persona.toml", "voice.txt", "voice.wav"]
        assert sender.chunks_sent > 10  # voice.wav is several 32 KiB chunks
        assert remote.avatar.profiles.received_files == 4 and remote.avatar.profiles.preparations == 1
        for entry in profile.files():
            cached = tmp_path / "cache" / "files" / f"{entry.sha256}-{entry.name}"
            assert hashlib.sha256(cached.read_bytes()).hexdigest() == entry.sha256
        assert remote.avatar.speaking.face is not original_face
        assert (
            remote.avatar.responder is not None
            and "Olena Testenko" in remote.avatar.responder.conversation.persona.text
        )
        assert remote.avatar.decider.names == ("Olena Testenko", "Olena", "Sasha")  # it answers to her name and alias

        again = local_peer(signaling, token, CollectingSink())
        second = ProfileSender(again, profile)
        async with running(again.run):
            status = await wait_status(second, "ready")
        assert status.detail == "already prepared"
        assert second.chunks_sent == 0 and remote.avatar.profiles.preparations == 1  # nothing sent, nothing re-prepared


class Replies:
    def __init__(self) -> None:
        self.messages: list[DataMessage] = []

    def __call__(self, message: DataMessage) -> None:
        self.messages.append(message)

    def last_status(self) -> ProfileStatus:
        return [m for m in self.messages if isinstance(m, ProfileStatus)][-1]


def entry(name: str, data: bytes) -> ProfileFile:
    return ProfileFile(name=name, sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))  # type: ignore[arg-type]


async def receiver(tmp_path: Path) -> tuple[ProfileReceiver, Replies, list[dict[str, Path]]]:
    applied: list[dict[str, Path]] = []

    async def apply(files: dict[str, Path]) -> None:
        applied.append(files)

    replies = Replies()
    return ProfileReceiver(ProfileCache(tmp_path / "cache"), apply, replies), replies, applied


async def test_files_over_the_size_limit_are_refused_before_any_transfer(tmp_path: Path) -> None:
    rx, replies, applied = await receiver(tmp_path)
    big = ProfileFile(name="face.png", sha256="0" * 64, bytes=LIMITS["face.png"] + 1)
    await rx.on_offer(ProfileOffer(profile="me", files=[big]), replies)
    assert replies.last_status().state == "rejected" and "limit" in (replies.last_status().detail or "")
    assert not applied


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("face.png", b"GIF89a" + b"x" * 100, "not a PNG image"),
        ("voice.wav", b"OggS" + b"x" * 100, "not a WAV file"),
        ("persona.toml", b'name = ""\n', "persona.toml: name"),
        ("voice.txt", b"\xff\xfe\x00bad", "not UTF-8 text"),
    ],
)
async def test_unexpected_content_is_refused_and_not_cached(
    tmp_path: Path, name: str, data: bytes, reason: str
) -> None:
    rx, replies, applied = await receiver(tmp_path)
    item = entry(name, data)
    await rx.on_offer(ProfileOffer(profile="me", files=[item]), replies)
    await rx.on_chunk(ProfileChunk(sha256=item.sha256, index=0, count=1, data=base64.b64encode(data).decode()), replies)
    assert replies.last_status().state == "rejected" and reason in (replies.last_status().detail or "")
    assert not list((tmp_path / "cache" / "files").iterdir()) and not applied


async def test_corrupted_or_out_of_order_chunks_are_refused(tmp_path: Path) -> None:
    rx, replies, _ = await receiver(tmp_path)
    data = np.arange(50_000, dtype=np.uint8).tobytes()
    png = b"\x89PNG\r\n\x1a\n" + data
    item = entry("face.png", png)
    await rx.on_offer(ProfileOffer(profile="me", files=[item]), replies)
    second = base64.b64encode(png[32 * 1024 :]).decode()
    await rx.on_chunk(ProfileChunk(sha256=item.sha256, index=1, count=2, data=second), replies)
    assert "chunk 1 arrived where 0 was expected" in (replies.last_status().detail or "")
    await rx.on_offer(ProfileOffer(profile="me", files=[item]), replies)
    tampered = bytearray(png[: 32 * 1024])
    tampered[100] ^= 1
    await rx.on_chunk(
        ProfileChunk(sha256=item.sha256, index=0, count=2, data=base64.b64encode(bytes(tampered)).decode()), replies
    )
    await rx.on_chunk(ProfileChunk(sha256=item.sha256, index=1, count=2, data=second), replies)
    assert "corrupted" in (replies.last_status().detail or "")
    shutil.rmtree(tmp_path / "cache")


async def test_content_checked_as_one_kind_of_file_is_never_used_as_another(tmp_path: Path) -> None:
    """Regression: chunks and the cache were keyed by hash alone, so a PNG offered as both face.png and voice.wav
    (or cached as face.png, then offered as voice.wav) reached the voice unchecked."""
    rx, replies, applied = await receiver(tmp_path)
    png = b"\x89PNG\r\n\x1a\n" + b"x" * 100
    face = entry("face.png", png)
    as_voice = ProfileFile(name="voice.wav", sha256=face.sha256, bytes=face.bytes)
    await rx.on_offer(ProfileOffer(profile="me", files=[as_voice, face]), replies)
    assert replies.last_status().state == "rejected"
    assert replies.last_status().detail == "the offer gives two files the same content"
    await rx.on_offer(ProfileOffer(profile="me", files=[face]), replies)
    await rx.on_chunk(ProfileChunk(sha256=face.sha256, index=0, count=1, data=base64.b64encode(png).decode()), replies)
    assert replies.last_status().state == "ready" and list(applied[-1]) == ["face.png"]  # cached as face.png
    await rx.on_offer(ProfileOffer(profile="me", files=[as_voice]), replies)
    assert ProfileRequest(sha256=[face.sha256]) in replies.messages[-2:]  # asked for again, to be checked as a WAV
    await rx.on_chunk(ProfileChunk(sha256=face.sha256, index=0, count=1, data=base64.b64encode(png).decode()), replies)
    assert "voice.wav is not a WAV file" in (replies.last_status().detail or "") and len(applied) == 1
