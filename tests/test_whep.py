"""WHEP: a player nobody here wrote (the npm ``whip-whep`` package's WHEPClient, in Debian's headless Chromium)
watches ``avatar demo``; the endpoint's auth, errors and session life against a real avatar.

Guards: a standard player cannot watch the avatar; a token that is wrong, expired or not a viewer's gets a
session; a bad offer takes the server down; a deleted session keeps costing the avatar an encode.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import subprocess
import tarfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiortc import RTCPeerConnection
from playwright.async_api import Browser

from benchmarks.harness.processes import environment_without_avatar_settings, start_avatar
from peer_remote.service import RemotePeer
from peer_remote.settings import RemoteSettings
from signaling.client import SignalingClient
from signaling.messages import Role
from signaling.server import SignalingService
from signaling.settings import SignalingSettings
from signaling.tokens import issue_token
from tests.peer_helpers import peer_fields, running

ROOT = Path(__file__).resolve().parent.parent
WHIP_WHEP = "whip-whep@1.2.0"  # github.com/medooze/whip-whep-js, published on npm
PLAYER_CACHE = ROOT / ".cache" / "whip-whep"


def whep_client_source() -> str:
    """``whep.js`` of the npm package (``npm pack``, cached under .cache/; .ci/run fetches it too)."""
    script = PLAYER_CACHE / "package" / "whep.js"
    if not script.exists():
        npm = shutil.which("npm")
        assert npm, "npm is not installed (.ci/run installs nodejs and npm)"
        PLAYER_CACHE.mkdir(parents=True, exist_ok=True)
        packed = subprocess.run(
            [npm, "pack", WHIP_WHEP, "--silent"], cwd=PLAYER_CACHE, capture_output=True, text=True, timeout=120
        )
        assert packed.returncode == 0, packed.stderr
        with tarfile.open(PLAYER_CACHE / packed.stdout.strip().splitlines()[-1]) as archive:
            archive.extractall(PLAYER_CACHE, filter="data")
    return script.read_text()


def viewer_token(secret: str, room: str, ttl_s: int = 120, role: str = "viewer", now: float | None = None) -> str:
    return issue_token(secret, room, role, ttl_s, now=now)


async def browser_offer() -> tuple[RTCPeerConnection, str]:
    """A receive-only audio+video offer, as players make them (aiortc gathers its candidates into it)."""
    pc = RTCPeerConnection()
    pc.addTransceiver("audio", direction="recvonly")
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


# -- a standard player watches avatar demo -----------------------------------------------------------------

PLAYER_PAGE = """<!doctype html><html><body>
<video id="video" autoplay muted playsinline></video><canvas id="canvas"></canvas>
<script type="module">
%s
window.watch = async (url, token) => {
  const pc = new RTCPeerConnection();
  pc.addTransceiver("audio", { direction: "recvonly" });
  pc.addTransceiver("video", { direction: "recvonly" });
  const stream = new MediaStream();
  pc.ontrack = (event) => { stream.addTrack(event.track); document.getElementById("video").srcObject = stream; };
  const whep = new WHEPClient();
  await whep.view(pc, url, token);
  window.player = { pc, whep, stream };
  return whep.resourceURL.href;
};
window.frameSpread = () => {  // how much the pixels of the current frame differ: 0 for a blank frame
  const video = document.getElementById("video"), canvas = document.getElementById("canvas");
  canvas.width = video.videoWidth; canvas.height = video.videoHeight;
  const context = canvas.getContext("2d");
  context.drawImage(video, 0, 0);
  const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
  let low = 255, high = 0;
  for (let i = 0; i < pixels.length; i += 4) { low = Math.min(low, pixels[i + 1]); high = Math.max(high, pixels[i + 1]); }
  return high - low;
};
window.audio = { packets: 0, decoded: 0 };  // audio packets received, samples decoded from them (not concealed)
setInterval(async () => {
  if (!window.player) return;
  for (const report of (await window.player.pc.getStats()).values())
    if (report.type === "inbound-rtp" && report.kind === "audio")
      window.audio = { packets: report.packetsReceived || 0,
                       decoded: (report.totalSamplesReceived || 0) - (report.concealedSamples || 0) };
}, 100);
window.playerReady = true;
</script></body></html>"""


@pytest.fixture
async def player_site() -> AsyncIterator[str]:
    """The player page, served from its own origin (localhost, not 127.0.0.1): the WHEP requests are cross-origin,
    as a player's on another site would be, and stay in the loopback address space (Chromium refuses a page from
    elsewhere access to loopback)."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=PLAYER_PAGE % whep_client_source(), content_type="text/html")

    app = web.Application()
    app.router.add_get("/player.html", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://localhost:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """``avatar demo`` as a real process: its base URL and its secret (from the join URL it prints)."""
    log = tmp_path / "demo.log"
    process = await start_avatar(
        *("demo", "--port", "0", "--no-browser", "--input", "none", "--camera", "none", "--mic-out", "none"),
        log_path=str(log),
        base_env=environment_without_avatar_settings(),
    )
    try:
        async with asyncio.timeout(120):
            # the join URL, then the avatar in the room (models loaded): polling the child's log, its only voice
            while "joined room demo as remote" not in (text := log.read_text()):
                assert process.returncode is None, text[-2000:]
                await asyncio.sleep(0.2)
        found = re.search(r"(http://127\.0\.0\.1:\d+)/\?room=demo&token=(\S+)", text)
        assert found, text[-2000:]
        yield found.group(1), found.group(2)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                async with asyncio.timeout(30):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


@pytest.mark.slow
async def test_the_npm_whep_client_in_chromium_plays_avatar_demos_video_and_audio(
    browser: Browser, demo: tuple[str, str], player_site: str
) -> None:
    base_url, secret = demo
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{player_site}/player.html")
    await page.wait_for_function("() => window.playerReady === true", timeout=10_000)
    location = await page.evaluate(
        "([url, token]) => window.watch(url, token)", [f"{base_url}/whep/demo", viewer_token(secret, "demo")]
    )
    assert re.fullmatch(rf"{re.escape(base_url)}/whep/demo/[A-Za-z0-9_-]{{32}}", location)
    await page.wait_for_function(
        "() => { const v = document.getElementById('video'); return v.videoWidth > 0 && "
        "v.getVideoPlaybackQuality().totalVideoFrames > 25; }",
        timeout=60_000,
    )
    size = await page.evaluate(
        "() => { const v = document.getElementById('video'); return [v.videoWidth, v.videoHeight]; }"
    )
    assert size[0] > 0 and size[1] > 0
    assert await page.evaluate("() => window.frameSpread()") > 30  # a picture, not a blank frame
    first = await page.evaluate("() => window.audio")
    # a second of audio decoded from packets that keep coming (the idle avatar sends Opus silence)
    await page.wait_for_function(
        f"() => window.audio.decoded > {first['decoded'] + 48_000} && window.audio.packets > {first['packets'] + 40}",
        timeout=20_000,
    )
    await page.evaluate("() => window.player.whep.stop()")  # the package's DELETE
    async with aiohttp.ClientSession() as http:
        token = viewer_token(secret, "demo")
        async with http.delete(location, headers={"Authorization": f"Bearer {token}"}) as gone:
            assert gone.status == 404  # the player's DELETE ended it


# -- the endpoint against a real avatar (the test pattern, in this process) ----------------------------------


def whep_url(signaling: SignalingService, room: str = "t") -> str:
    return f"{signaling.base_url}/whep/{room}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/sdp"}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def offer() -> AsyncIterator[str]:
    pc, sdp = await browser_offer()
    yield sdp
    await pc.close()


async def wait_sessions(remote: RemotePeer, count: int) -> None:
    async with asyncio.timeout(10):
        while len(remote.sessions) != count:
            remote.sessions_changed.clear()
            await remote.sessions_changed.wait()


async def test_a_viewer_token_gets_the_avatars_answer_with_a_location_and_an_etag(
    signaling: SignalingService, token: str, remote: RemotePeer, http: aiohttp.ClientSession, offer: str
) -> None:
    async with http.post(whep_url(signaling), data=offer, headers=bearer(viewer_token(token, "t"))) as answer:
        assert answer.status == 201, await answer.text()
        assert answer.content_type == "application/sdp"
        body = await answer.text()
        location, etag = answer.headers["Location"], answer.headers["ETag"]
        assert "Location" in answer.headers["Access-Control-Expose-Headers"]
    assert body.startswith("v=0") and "a=candidate:" in body and "a=sendonly" in body
    assert re.fullmatch(r"/whep/t/[A-Za-z0-9_-]{32}", location)
    assert re.fullmatch(r'"[0-9a-f]{16}"', etag)
    await wait_sessions(remote, 1)
    assert remote.sessions[next(iter(remote.sessions))].role is Role.VIEWER  # steers nothing (no local messages)


async def test_delete_ends_the_session_at_the_avatar_and_then_it_is_gone(
    signaling: SignalingService, token: str, remote: RemotePeer, http: aiohttp.ClientSession, offer: str
) -> None:
    headers = bearer(viewer_token(token, "t"))
    async with http.post(whep_url(signaling), data=offer, headers=headers) as answer:
        assert answer.status == 201
        location = signaling.base_url + answer.headers["Location"]
    await wait_sessions(remote, 1)
    async with http.delete(location, headers={"Authorization": headers["Authorization"]}) as deleted:
        assert deleted.status == 200
    await wait_sessions(remote, 0)
    assert signaling.server.registry.peer_count == 1  # the avatar alone
    async with http.delete(location, headers={"Authorization": headers["Authorization"]}) as again:
        assert again.status == 404


@pytest.mark.parametrize(
    ("presented", "reason"),
    [
        (None, "missing token"),
        ("not-the-token", "missing or wrong token"),
        ("expired", "token expired"),
        ("other-secret", "wrong token signature"),
    ],
)
async def test_a_wrong_missing_or_expired_token_gets_401_before_the_body_is_read(
    signaling: SignalingService,
    token: str,
    remote: RemotePeer,
    http: aiohttp.ClientSession,
    presented: str | None,
    reason: str,
) -> None:
    tokens = {
        "expired": viewer_token(token, "t", ttl_s=60, now=time.time() - 3600),
        "other-secret": viewer_token("another-secret-of-thirty-two-bytes!!", "t"),
    }
    headers = {"Content-Type": "text/plain"}  # also the wrong type: the token is judged first
    if presented is not None:
        headers["Authorization"] = f"Bearer {tokens.get(presented, presented)}"
    async with http.post(whep_url(signaling), data="garbage", headers=headers) as refused:
        assert refused.status == 401
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await refused.json())["error"] == reason
    assert len(remote.sessions) == 0


@pytest.mark.parametrize("role", ["local", "remote"])
async def test_the_laptops_or_the_avatars_token_is_not_a_viewers(
    signaling: SignalingService, token: str, remote: RemotePeer, http: aiohttp.ClientSession, offer: str, role: str
) -> None:
    headers = bearer(viewer_token(token, "t", role=role))
    async with http.post(whep_url(signaling), data=offer, headers=headers) as refused:
        assert refused.status == 403
        assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]
        assert (await refused.json())["error"] == f"token is for the {role} role"
    async with http.post(whep_url(signaling), data=offer, headers=bearer(viewer_token(token, "other"))) as other:
        assert other.status == 403 and (await other.json())["error"] == "token is for another room"


@pytest.mark.parametrize(
    ("sdp", "status", "says"),
    [
        ("hello", 400, "not an SDP session description"),
        ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", 400, "not an SDP session description"),
        (b"v=0\r\nm=video \xff\xfe", 400, "not UTF-8"),
        # well formed, but no codec the avatar sends: refused by the avatar's SDP policy
        ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 98\r\n", 400, "bad offer"),
        ("v=0\r\n" + "a=x\r\n" * 20_000, 413, "at most"),
    ],
)
async def test_a_bad_offer_gets_a_clear_error_and_the_server_keeps_serving(
    signaling: SignalingService,
    token: str,
    remote: RemotePeer,
    http: aiohttp.ClientSession,
    offer: str,
    sdp: str | bytes,
    status: int,
    says: str,
) -> None:
    headers = bearer(viewer_token(token, "t"))
    async with http.post(whep_url(signaling), data=sdp, headers=headers) as refused:
        assert refused.status == status
        assert says in (await refused.json())["error"]
    assert signaling.server.registry.peer_count == 1 and len(remote.sessions) == 0
    async with http.post(whep_url(signaling), data=offer, headers=headers) as good:
        assert good.status == 201


async def test_an_offer_must_be_application_sdp(
    signaling: SignalingService, token: str, remote: RemotePeer, http: aiohttp.ClientSession, offer: str
) -> None:
    headers = {**bearer(viewer_token(token, "t")), "Content-Type": "application/json"}
    async with http.post(whep_url(signaling), data=offer, headers=headers) as refused:
        assert refused.status == 415 and refused.headers["Accept-Post"] == "application/sdp"


async def test_a_room_without_an_avatar_answers_503(
    signaling: SignalingService, token: str, http: aiohttp.ClientSession, offer: str
) -> None:
    async with http.post(whep_url(signaling, "empty"), data=offer, headers=bearer(viewer_token(token, "empty"))) as r:
        assert r.status == 503 and "no avatar in room 'empty'" in (await r.json())["error"]


async def test_whep_viewers_are_held_to_the_rooms_viewer_limit(
    token: str, http: aiohttp.ClientSession, offer: str
) -> None:
    settings = SignalingSettings.load({"host": "127.0.0.1", "port": 0, "max_viewers_per_room": 0})
    async with (
        SignalingService(settings, token) as signaling,
        SignalingClient(signaling.base_url, "t", Role.REMOTE, token),
        http.post(whep_url(signaling), data=offer, headers=bearer(viewer_token(token, "t"))) as full,
    ):
        assert full.status == 503 and "maximum of 0 viewers" in (await full.json())["error"]


async def test_an_avatar_that_never_answers_gets_504_and_the_viewer_is_gone(
    signaling: SignalingService, token: str, http: aiohttp.ClientSession, offer: str
) -> None:
    signaling.server.whep.answer_timeout_s = 0.5
    async with SignalingClient(signaling.base_url, "mute", Role.REMOTE, token):  # joined, reads nothing
        headers = bearer(viewer_token(token, "mute"))
        async with http.post(whep_url(signaling, "mute"), data=offer, headers=headers) as late:
            assert late.status == 504 and "did not answer" in (await late.json())["error"]
        assert signaling.server.registry.peer_count == 1 and not signaling.server.whep.sessions


async def test_trickle_is_refused_with_405_and_options_describes_the_endpoint(
    signaling: SignalingService, token: str, remote: RemotePeer, http: aiohttp.ClientSession, offer: str
) -> None:
    headers = bearer(viewer_token(token, "t"))
    async with http.options(whep_url(signaling)) as preflight:  # a browser's preflight carries no token
        assert preflight.status == 204
        assert preflight.headers["Accept-Post"] == "application/sdp"
        assert preflight.headers["Access-Control-Allow-Origin"] == "*"
        assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
        assert {"authorization", "content-type"} <= {
            h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")
        }
    async with http.post(whep_url(signaling), data=offer, headers=headers) as answer:
        location = signaling.base_url + answer.headers["Location"]
    async with http.options(location) as preflight:
        assert preflight.status == 204 and "DELETE" in preflight.headers["Access-Control-Allow-Methods"]
    trickle = {**headers, "Content-Type": "application/trickle-ice-sdpfrag"}
    async with http.patch(location, data="a=end-of-candidates\r\n", headers=trickle) as patched:
        assert patched.status == 405


async def test_the_answer_links_the_rooms_ice_servers_with_fresh_turn_credentials(
    token: str, http: aiohttp.ClientSession, offer: str
) -> None:
    settings = SignalingSettings.load(
        {
            "host": "127.0.0.1",
            "port": 0,
            "ice_servers": ["stun:stun.example.net:3478", "turn:turn.example.net:3478?transport=udp"],
            "turn_secret": "coturn-static-auth-secret",
        }
    )
    async with SignalingService(settings, token) as signaling:
        avatar = RemotePeer(RemoteSettings.load({**peer_fields(signaling, token), "width": 320, "height": 240}))
        async with running(avatar.run):
            async with asyncio.timeout(10):
                await avatar.connected.wait()
            async with http.post(whep_url(signaling), data=offer, headers=bearer(viewer_token(token, "t"))) as answer:
                assert answer.status == 201
                links = answer.headers["Link"]
    stun, turn = links.split(", <")
    assert stun == '<stun:stun.example.net:3478>; rel="ice-server"'
    match = re.fullmatch(
        r'turn:turn\.example\.net:3478\?transport=udp>; rel="ice-server"; username="(\d+):(\w+)"; '
        r'credential="([A-Za-z0-9+/=]+)"; credential-type="password"',
        turn,
    )
    assert match and int(match.group(1)) > time.time()  # TURN REST credentials, as /ws viewers get them
