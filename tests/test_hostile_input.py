"""Hostile input: the SDP allow-list, fuzzed parsers of ours, bad offers and random UDP at a live call."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import socket

import pytest
from aiortc import RTCPeerConnection
from hypothesis import given, settings
from hypothesis import strategies as st

from media.protocol import ProtocolError, parse_message
from media.rtc.sdp_policy import MAX_SDP_BYTES, SdpPolicyError, check_sdp
from peer_local.service import LocalPeer
from peer_remote.service import RemotePeer
from signaling.client import SignalingClient
from signaling.messages import Answer, Bye, MessageError, Offer, Role, parse_client_message, parse_server_message
from signaling.server import SignalingService
from tests.collecting_sink import CollectingSink
from tests.peer_helpers import local_peer, running

CHROME_LIKE_OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1 2",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
        "c=IN IP4 0.0.0.0",
        "a=mid:0",
        "a=recvonly",
        "a=rtpmap:111 opus/48000/2",
        "a=rtpmap:63 red/48000/2",
        "a=rtpmap:9 G722/8000",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:13 CN/8000",
        "a=rtpmap:110 telephone-event/48000",
        "a=rtpmap:126 telephone-event/8000",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 45 46",
        "c=IN IP4 0.0.0.0",
        "a=mid:1",
        "a=recvonly",
        "a=rtpmap:96 VP8/90000",
        "a=rtpmap:97 rtx/90000",
        "a=rtpmap:98 VP9/90000",
        "a=rtpmap:99 rtx/90000",
        "a=rtpmap:45 AV1/90000",
        "a=rtpmap:46 rtx/90000",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "c=IN IP4 0.0.0.0",
        "a=mid:2",
        "a=sctp-port:5000",
        "",
    ]
)


def replace_line(sdp: str, old: str, new: str) -> str:
    assert old in sdp
    return sdp.replace(old, new)


async def aiortc_offer() -> str:
    pc = RTCPeerConnection()
    pc.addTransceiver("audio", direction="recvonly")
    pc.addTransceiver("video", direction="recvonly")
    pc.createDataChannel("avatar")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


async def test_real_offers_pass_the_allow_list() -> None:
    check_sdp(await aiortc_offer(), "offer")
    check_sdp(CHROME_LIKE_OFFER, "offer")


@pytest.mark.parametrize(
    ("sdp", "reason"),
    [
        (CHROME_LIKE_OFFER + "m=text 9 UDP/TLS/RTP/SAVPF 100\r\na=rtpmap:100 t140/1000\r\n", "media kind 'text'"),
        (CHROME_LIKE_OFFER + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n", "2 audio sections"),
        (
            replace_line(CHROME_LIKE_OFFER, "a=rtpmap:96 VP8/90000", "a=rtpmap:96 VP9/90000"),
            "video section without H264 or VP8",
        ),
        (
            replace_line(CHROME_LIKE_OFFER, "a=rtpmap:111 opus/48000/2", "a=rtpmap:111 L16/48000/2"),
            "audio section without Opus",
        ),
        (CHROME_LIKE_OFFER.replace("UDP/TLS/RTP/SAVPF", "RTP/AVP"), "only encrypted RTP"),
        (CHROME_LIKE_OFFER.replace("UDP/DTLS/SCTP webrtc", "UDP/TLS/RTP/SAVPF webrtc"), "only SCTP over DTLS"),
        (CHROME_LIKE_OFFER.replace("s=-", "s=\x00\x01"), "malformed line"),
        ("o=- 1 2 IN IP4 127.0.0.1\r\n", "must start with v=0"),
        ("v=0\r\ns=-\r\n", "no media sections"),
        (CHROME_LIKE_OFFER + "a=x:" + "y" * MAX_SDP_BYTES + "\r\n", "larger than"),
    ],
    ids=[
        "text-media",
        "two-audio",
        "no-vp8-h264",
        "no-opus",
        "plain-rtp",
        "data-over-rtp",
        "binary",
        "no-v",
        "no-media",
        "huge",
    ],
)
def test_disallowed_descriptions_are_refused_with_the_reason(sdp: str, reason: str) -> None:
    with pytest.raises(SdpPolicyError, match=reason):
        check_sdp(sdp, "offer")


def test_an_answer_must_pick_an_allowed_codec_first() -> None:
    answer = replace_line(
        CHROME_LIKE_OFFER, "m=audio 9 UDP/TLS/RTP/SAVPF 111 63", "m=audio 9 UDP/TLS/RTP/SAVPF 0 111 63"
    )
    check_sdp(answer, "offer")  # an offer may list others first
    with pytest.raises(SdpPolicyError, match="audio answered with PCMU"):
        check_sdp(answer, "answer")


@given(st.text(max_size=2000))
@settings(max_examples=300, deadline=None)
def test_sdp_check_on_any_text_refuses_cleanly(text: str) -> None:
    with contextlib.suppress(SdpPolicyError):
        check_sdp(text, "offer")


@given(st.lists(st.integers(0, len(CHROME_LIKE_OFFER.splitlines()) - 1), max_size=5), st.text(max_size=40))
@settings(max_examples=300, deadline=None)
def test_sdp_check_on_mangled_real_offers_refuses_cleanly(lines: list[int], junk: str) -> None:
    mangled = CHROME_LIKE_OFFER.splitlines()
    for index in lines:
        mangled[index] = mangled[index][: len(junk)] + junk
    with contextlib.suppress(SdpPolicyError):
        check_sdp("\r\n".join(mangled), "offer")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
MESSAGE_TYPES = [
    "offer",
    "answer",
    "candidate",
    "bye",
    "ping",
    "transcript",
    "interrupt",
    "turn",
    "metrics",
    "pong",
    "error",
]


@given(st.one_of(st.text(max_size=500), st.binary(max_size=500)))
@settings(max_examples=300, deadline=None)
def test_data_channel_parser_refuses_any_bytes_with_a_protocol_error(data: str | bytes) -> None:
    try:
        parse_message(data)
    except ProtocolError as exc:
        assert exc.code in {"bad-json", "bad-message", "unknown-type", "too-large", "bad-version"}, exc.code


@given(st.sampled_from(MESSAGE_TYPES), st.dictionaries(st.text(max_size=12), JSON_VALUES, max_size=6))
@settings(max_examples=400, deadline=None)
def test_both_parsers_take_any_json_object_without_crashing(kind: str, fields: dict) -> None:
    document = json.dumps({**fields, "type": kind})
    with contextlib.suppress(ProtocolError):
        parse_message(document)
    with contextlib.suppress(MessageError):
        parse_client_message(document, 64 * 1024)
    with contextlib.suppress(MessageError):
        parse_server_message(document)


@pytest.mark.slow
async def test_a_disallowed_offer_gets_bye_and_the_remote_keeps_serving(
    signaling: SignalingService, token: str, remote: RemotePeer
) -> None:
    bad = CHROME_LIKE_OFFER + "m=text 9 UDP/TLS/RTP/SAVPF 100\r\na=rtpmap:100 t140/1000\r\n"
    async with SignalingClient(signaling.base_url, "t", Role.VIEWER, token) as client:
        assert client.welcome is not None
        remote_id = next(p.peer_id for p in client.welcome.peers if p.role is Role.REMOTE)
        await client.send(Offer(to=remote_id, sdp=bad))
        async with asyncio.timeout(10):
            reply = await anext(client.messages())
    assert isinstance(reply, Bye) and "media kind 'text' is not allowed" in (reply.reason or "")
    assert not isinstance(reply, Answer)
    sink = CollectingSink()
    async with running(local_peer(signaling, token, sink).run):
        await sink.wait_until(lambda s: len(s.stamp_indices) >= 10, timeout_s=20)  # still serving


def media_port(peer_pc: RTCPeerConnection) -> int:
    """The UDP port of a peer connection's (bundled) ICE host candidate on 127.0.0.1."""
    transport = peer_pc.getTransceivers()[0].receiver.transport.transport
    ports = {c.port for c in transport.iceGatherer.getLocalCandidates() if c.ip == "127.0.0.1"}
    assert len(ports) == 1, ports
    return ports.pop()


def random_datagrams(count: int, seed: int) -> list[bytes]:
    """Noise, plus datagrams that start like RTP, RTCP, STUN and DTLS so every demultiplexer branch sees junk."""
    rng = random.Random(seed)
    prefixes = [b"", b"\x80", b"\x80\xc8", b"\x00\x01\x00\x00\x21\x12\xa4\x42", b"\x16\xfe\xfd", b"\x17\xfe\xfd"]
    return [rng.choice(prefixes) + os.urandom(rng.randint(0, 1400)) for _ in range(count)]


@pytest.mark.slow
async def test_random_udp_at_both_media_ports_mid_call_is_dropped_and_media_continues(
    signaling: SignalingService, token: str, remote: RemotePeer
) -> None:
    sink = CollectingSink()
    local: LocalPeer = local_peer(signaling, token, sink)
    async with running(local.run):
        await sink.wait_until(lambda s: len(s.stamp_indices) >= 10 and s.connections[-1] is True, timeout_s=20)
        session = local.session
        assert session is not None
        targets = [media_port(session.pc), media_port(next(iter(remote.sessions.values())).pc)]
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sender.setblocking(False)
        try:
            for index, datagram in enumerate(random_datagrams(4000, seed=7)):
                sender.sendto(datagram, ("127.0.0.1", targets[index % 2]))
                if index % 200 == 0:
                    await asyncio.sleep(0)  # let the peers' loops run between bursts (not a synchronisation)
        finally:
            sender.close()
        before = len(sink.stamp_indices)
        await sink.wait_until(lambda s: len(s.stamp_indices) >= before + 50, timeout_s=10)  # 2 s of video flows on
        assert local.session is session and session.pc.connectionState == "connected"
        assert await session.endpoint.ping(timeout_s=5) > 0


async def test_a_viewer_cannot_take_over_mute_skip_or_replace_the_profile(
    signaling: SignalingService, token: str, remote: RemotePeer
) -> None:
    """Regression: the remote obeyed control, interrupt and profile messages from any subscriber, so whoever held a
    viewer token (a preview link) could un-pause the clone during a take-over or replace its persona and face; and
    the meeting-manners messages: a viewer's `speech start` would hold the clone's floor, `answer-now` make it answer."""
    from media.protocol import AnswerNow, Control, Error, Interrupt, ProfileChunk, ProfileFile, ProfileOffer, Speech

    replies: asyncio.Queue[object] = asyncio.Queue()
    viewer = local_peer(signaling, token, CollectingSink(), role=Role.VIEWER)
    viewer.message_received.connect(replies.put_nowait)
    attacks = [
        Control(mode="person", muted=True),
        Interrupt(reason="skip"),
        ProfileOffer(profile="evil", files=[ProfileFile(name="persona.toml", sha256="a" * 64, bytes=10)]),
        ProfileChunk(sha256="a" * 64, index=0, count=1, data=""),
        Speech(state="start"),
        AnswerNow(),
    ]
    async with running(viewer.run):
        async with asyncio.timeout(10):
            session = await viewer.wait_session()
            await session.channel_open.wait()
        for message in attacks:
            assert session.endpoint.send(message)
        async with asyncio.timeout(10):
            received = [await replies.get() for _ in attacks]
    assert all(isinstance(r, Error) and r.code == "not-allowed" for r in received), received
    assert not remote.avatar.control.clone_paused and remote.avatar.interrupts_received == 0
    assert remote.avatar.profiles.received_files == 0 and remote.avatar.profiles.applied_key is None
    assert remote.avatar.floor.free  # nobody held the floor for the viewer
