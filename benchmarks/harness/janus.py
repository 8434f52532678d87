"""A real SFU on this machine: Debian's Janus (VideoRoom) behind its WHIP front, ``simple-whip-server``, and
subscribers that watch it through Janus's own HTTP API (aiortc peers).

Janus never gathers ICE candidates on a loopback interface (``src/ice.c``, ``janus_ice_setup_local``: "Skip
loopback interfaces"), so it runs in a network namespace of its own, joined to this one by a veth pair that
nothing else uses (root and iproute2 needed): its WebSocket API (for simple-whip-server, in the same namespace)
on that namespace's 127.0.0.1, its HTTP API and ICE on the namespace's end of the pair, from a private
configuration folder written here. simple-whip-server (Debian's package, unpacked under .cache/ with its npm
dependencies by .ci/run, since as a package it conflicts with newer nodejs builds) publishes WHIP offers into a
VideoRoom room. The API facts below are from Janus's ``src/plugins/janus_videoroom.c`` (its API comment:
``listparticipants``, subscriber ``join`` with ``streams: [{feed}]``, ``start`` with the answer),
``src/transports/janus_http.c`` (events by long poll, ``?maxev=``) and simple-whip-server's ``src/server.js``
(``POST /whip/create``, ``/whip/endpoint/{id}``, ``/whip/healthcheck``; it reconnects to a restarted Janus).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.harness.processes import open_log, stop_process
from benchmarks.harness.receiver import FrameListener, ReceivingPeer

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent.parent
WHIP_SERVER_DIR = ROOT / ".cache" / "simple-whip-server"
JANUS_LIBS = Path("/usr/lib/x86_64-linux-gnu/janus")
ROOM_ID = 1234
START_TIMEOUT_S = 30.0
# every plugin but the VideoRoom, every transport but HTTP and WebSockets: less to start, nothing else listening
PLUGINS_OFF = "audiobridge duktape echotest lua nosip recordplay sip streaming textroom videocall voicemail"
TRANSPORTS_OFF = "mqtt nanomsg pfunix rabbitmq"


class SfuUnavailableError(RuntimeError):
    """Janus or simple-whip-server is not installed here (.ci/run installs both)."""


def sfu_problem() -> str | None:
    """Why the SFU cannot run on this machine, or None."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return "the SFU's network namespace needs root and iproute2"
    if shutil.which("janus") is None:
        return "janus is not installed (apt-get install janus; .ci/run does)"
    if shutil.which("node") is None:
        return "node is not installed (.ci/run installs nodejs)"
    if not (WHIP_SERVER_DIR / "src" / "server.js").exists() or not (WHIP_SERVER_DIR / "node_modules").exists():
        return f"simple-whip-server is not unpacked in {WHIP_SERVER_DIR} (.ci/run does it)"
    return None


def _disabled(names: str) -> str:
    return ",".join(f"libjanus_{name}.so" for name in names.split())


class SfuNetwork:
    """A network namespace for the SFU and a veth pair to it: ``host_ip`` here, ``sfu_ip`` there (a /30)."""

    made = 0  # networks made by this process: each gets its own names and addresses

    def __init__(self) -> None:
        pid, number = os.getpid() % 100000, SfuNetwork.made % 60
        SfuNetwork.made += 1
        self.namespace, self.host_link = f"avsfu{pid}n{number}", f"avsfu{pid}n{number}h"
        base = f"10.211.{pid % 250}"
        self.host_ip, self.sfu_ip = f"{base}.{4 * number + 1}", f"{base}.{4 * number + 2}"

    def exec_argv(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.namespace, *argv]

    def create(self) -> None:
        self.destroy()  # leftovers of a killed run
        inner = "eth0"
        _run("ip", "netns", "add", self.namespace)
        _run("ip", "link", "add", self.host_link, "type", "veth", "peer", "name", inner, "netns", self.namespace)
        _run("ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_link)
        _run("ip", "link", "set", "dev", self.host_link, "up")
        _run("ip", "-n", self.namespace, "addr", "add", f"{self.sfu_ip}/30", "dev", inner)
        _run("ip", "-n", self.namespace, "link", "set", "dev", inner, "up")
        _run("ip", "-n", self.namespace, "link", "set", "dev", "lo", "up")

    def destroy(self) -> None:
        """Our end of the pair (the kernel removes a deleted namespace's devices later, not at once), then the
        namespace."""
        for argv in (["ip", "link", "del", self.host_link], ["ip", "netns", "del", self.namespace]):
            subprocess.run(argv, capture_output=True, timeout=20, check=False)


def _run(*argv: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    if result.returncode != 0:
        raise SfuUnavailableError(f"{' '.join(argv)}: {result.stderr.strip() or result.returncode}")


def write_janus_config(folder: Path, http_ip: str, http_port: int, ws_port: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "janus.jcfg").write_text(
        f"""general: {{
    configs_folder = "{folder}"
    plugins_folder = "{JANUS_LIBS}/plugins"
    transports_folder = "{JANUS_LIBS}/transports"
    events_folder = "{JANUS_LIBS}/events"
    loggers_folder = "{JANUS_LIBS}/loggers"
    debug_level = 4
    session_timeout = 60
}}
nat: {{
    ice_enforce_list = "{http_ip}"
    ignore_mdns = true
}}
plugins: {{ disable = "{_disabled(PLUGINS_OFF)}" }}
transports: {{ disable = "{_disabled(TRANSPORTS_OFF)}" }}
loggers: {{ disable = "libjanus_jsonlog.so" }}
events: {{ broadcast = false }}
"""
    )
    (folder / "janus.plugin.videoroom.jcfg").write_text(
        f"""general: {{
}}
room-{ROOM_ID}: {{
    description = "avatar"
    publishers = 1
    bitrate = 2000000
    fir_freq = 2
    audiocodec = "opus"
    videocodec = "vp8,h264"
}}
"""
    )
    (folder / "janus.transport.http.jcfg").write_text(
        f"""general: {{
    http = true
    ip = "{http_ip}"
    port = {http_port}
    base_path = "/janus"
    https = false
}}
admin: {{ admin_http = false admin_https = false }}
"""
    )
    (folder / "janus.transport.websockets.jcfg").write_text(
        f"""general: {{
    ws = true
    ws_ip = "127.0.0.1"
    ws_port = {ws_port}
    wss = false
}}
admin: {{ admin_ws = false admin_wss = false }}
"""
    )


def write_whip_server(folder: Path, ws_port: int, whip_port: int) -> Path:
    """A copy of simple-whip-server's src/ with its config.js (it reads ``./config.js`` beside server.js)."""
    source = folder / "src"
    source.mkdir(parents=True, exist_ok=True)
    for name in ("server.js", "whip-janus.js"):  # the package's config.js links to /etc: ours replaces it
        shutil.copy(WHIP_SERVER_DIR / "src" / name, source / name)
    (source / "config.js").write_text(
        f"""module.exports = {{
    janus: {{ address: 'ws://127.0.0.1:{ws_port}' }},
    port: {whip_port},
    rest: '/whip',
    allowTrickle: true,
    strictETags: false,
    iceServers: []
}};
"""
    )
    return source / "server.js"


async def _wait_http(url: str, timeout_s: float, process: asyncio.subprocess.Process, log: Path) -> None:
    """Until ``url`` answers (the process has no other way to say it is ready); bounded."""
    async with asyncio.timeout(timeout_s), aiohttp.ClientSession() as http:
        while True:
            if process.returncode is not None:
                raise SfuUnavailableError(f"it exited with {process.returncode}; its log: {log}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(url) as response:
                    if response.status < 500:
                        return
            await asyncio.sleep(0.2)


@dataclass
class JanusSfu:
    """Janus + simple-whip-server in their namespace (files in ``folder``); one WHIP endpoint into room 1234."""

    folder: Path
    network: SfuNetwork = field(default_factory=SfuNetwork)
    endpoint_token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    # the namespace is ours alone: upstream's default ports
    http_port: int = 8088
    ws_port: int = 8188
    whip_port: int = 7080
    janus: asyncio.subprocess.Process | None = None
    whip_server: asyncio.subprocess.Process | None = None

    @property
    def janus_url(self) -> str:
        return f"http://{self.network.sfu_ip}:{self.http_port}/janus"

    @property
    def whip_url(self) -> str:
        return f"http://{self.network.sfu_ip}:{self.whip_port}/whip/endpoint/avatar"

    async def start(self) -> None:
        problem = sfu_problem()
        if problem:
            raise SfuUnavailableError(problem)
        await asyncio.to_thread(self.network.create)
        write_janus_config(self.folder / "janus", self.network.sfu_ip, self.http_port, self.ws_port)
        await self.start_janus()
        server = write_whip_server(self.folder / "whip", self.ws_port, self.whip_port)
        log = self.folder / "whip-server.log"
        with open_log(str(log)) as out:
            self.whip_server = await asyncio.create_subprocess_exec(
                *self.network.exec_argv("node", str(server)),
                cwd=server.parent.parent,
                env={**os.environ, "NODE_PATH": str(WHIP_SERVER_DIR / "node_modules"), "DEBUG": "whip:*"},
                stdout=out,
                stderr=out,
            )
        whip_base = f"http://{self.network.sfu_ip}:{self.whip_port}/whip"
        await _wait_http(f"{whip_base}/healthcheck", START_TIMEOUT_S, self.whip_server, log)
        async with aiohttp.ClientSession() as http:
            body = {"id": "avatar", "room": ROOM_ID, "token": self.endpoint_token}
            async with http.post(f"{whip_base}/create", json=body) as created:
                if created.status != 200:
                    raise SfuUnavailableError(f"simple-whip-server refused the endpoint: {await created.text()}")

    async def start_janus(self) -> None:
        folder = self.folder / "janus"
        log = self.folder / "janus.log"
        with open_log(str(log)) as out:
            self.janus = await asyncio.create_subprocess_exec(
                *self.network.exec_argv("janus", "-F", str(folder), "-C", str(folder / "janus.jcfg")),
                stdout=out,
                stderr=out,
            )
        await _wait_http(f"{self.janus_url}/info", START_TIMEOUT_S, self.janus, log)

    async def stop_janus(self) -> None:
        if self.janus is not None:
            await stop_process(self.janus)
            self.janus = None

    async def stop(self) -> None:
        if self.whip_server is not None:
            await stop_process(self.whip_server)
            self.whip_server = None
        await self.stop_janus()
        await asyncio.to_thread(self.network.destroy)

    async def publisher_id(self, timeout_s: float) -> int:
        """The room's publisher (the avatar, once its WHIP session is up), waiting for it; bounded."""
        async with asyncio.timeout(timeout_s), JanusSession(self.janus_url) as session:
            while True:
                reply = await session.request({"request": "listparticipants", "room": ROOM_ID})
                publishers = [p["id"] for p in reply.get("participants", []) if p.get("publisher")]
                if publishers:
                    return int(publishers[0])
                await asyncio.sleep(0.2)  # Janus tells non-participants nothing: ask again


@contextlib.asynccontextmanager
async def running_sfu(folder: Path) -> AsyncIterator[JanusSfu]:
    sfu = JanusSfu(folder)
    try:
        await sfu.start()
        yield sfu
    finally:
        await sfu.stop()


class JanusError(RuntimeError):
    """Janus answered a request with an error."""


class JanusSession:
    """A Janus API session with one VideoRoom handle, over HTTP (requests and long-polled events)."""

    def __init__(self, base_url: str, timeout_s: float = 10.0) -> None:
        self.base_url = base_url
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s + 35.0))
        self.session_id: int | None = None
        self.handle_id: int | None = None
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=64)
        self._poller: asyncio.Task[None] | None = None

    async def __aenter__(self) -> JanusSession:
        created = await self._post(self.base_url, {"janus": "create"})
        self.session_id = int(created["data"]["id"])
        attached = await self._post(self._session_url, {"janus": "attach", "plugin": "janus.plugin.videoroom"})
        self.handle_id = int(attached["data"]["id"])
        self._poller = asyncio.create_task(self._poll())  # also keeps the session alive (session_timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        with contextlib.suppress(aiohttp.ClientError, TimeoutError, JanusError):
            await self._post(self._session_url, {"janus": "destroy"})
        await self._http.close()

    @property
    def _session_url(self) -> str:
        return f"{self.base_url}/{self.session_id}"

    async def _post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self._http.post(url, json={**body, "transaction": secrets.token_hex(6)}) as response:
            reply: dict[str, Any] = await response.json(content_type=None)
        if reply.get("janus") == "error":
            raise JanusError(str(reply.get("error")))
        return reply

    async def request(self, body: dict[str, Any], jsep: dict[str, str] | None = None) -> dict[str, Any]:
        """A VideoRoom request; its plugin data (synchronous requests) or {} (asynchronous: see ``events``)."""
        message: dict[str, Any] = {"janus": "message", "body": body, **({"jsep": jsep} if jsep else {})}
        reply = await self._post(f"{self._session_url}/{self.handle_id}", message)
        data: dict[str, Any] = reply.get("plugindata", {}).get("data", {})
        if "error" in data:
            raise JanusError(str(data["error"]))
        return data

    async def _poll(self) -> None:
        while True:
            try:
                async with self._http.get(f"{self._session_url}?maxev=5") as response:
                    batch = await response.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError) as exc:
                logger.info("Janus event poll failed: %s", exc)
                return
            for event in batch if isinstance(batch, list) else [batch]:
                if event.get("janus") != "keepalive" and not self.events.full():
                    self.events.put_nowait(event)

    async def next_event(self, kind: str, timeout_s: float) -> dict[str, Any]:
        """The next event whose ``janus`` is ``kind`` (others are dropped); bounded."""
        async with asyncio.timeout(timeout_s):
            while True:
                event = await self.events.get()
                if event.get("janus") == kind:
                    return event


class JanusSubscriber:
    """A viewer of the room's publisher through Janus: a VideoRoom subscriber, Janus offering."""

    def __init__(self, sfu_url: str, publisher: int, on_video: FrameListener, on_audio: FrameListener) -> None:
        self._session = JanusSession(sfu_url)
        self.publisher = publisher
        self.peer = ReceivingPeer(on_video, on_audio)

    async def start(self, timeout_s: float = 20.0) -> None:
        await self._session.__aenter__()
        await self._session.request(
            {"request": "join", "ptype": "subscriber", "room": ROOM_ID, "streams": [{"feed": self.publisher}]}
        )
        offer = await self._session.next_event("event", timeout_s)
        jsep = offer.get("jsep")
        if not jsep:
            raise JanusError(f"Janus sent no offer: {offer.get('plugindata')}")
        answer = await self.peer.answer(jsep["sdp"])
        await self._session.request({"request": "start"}, {"type": "answer", "sdp": answer})

    async def close(self) -> None:
        await self.peer.close()
        await self._session.__aexit__()
