"""WebRTC through a TURN relay when no direct path exists: two network namespaces that cannot reach each
other, a real coturn (Debian package) on the host between them, credentials derived by the signaling server."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aioice import stun

from peer_remote.box.plan import coturn_config
from signaling.messages import Role
from signaling.server import SignalingService
from signaling.settings import SignalingSettings
from signaling.turn import turn_credentials

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
A_HOST, A_PEER = "10.201.11.1", "10.201.11.2"  # host side / namespace side
B_HOST, B_PEER = "10.201.12.1", "10.201.12.2"


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=10)


@pytest.fixture
def namespaces() -> Iterator[tuple[str, str]]:
    assert os.geteuid() == 0 and shutil.which("ip"), "network namespaces need root and iproute2 (CI has both)"
    tag = str(os.getpid() % 100000)
    a, b = f"avta{tag}", f"avtb{tag}"
    try:
        for ns, host, peer, other_host in ((a, A_HOST, A_PEER, B_HOST), (b, B_HOST, B_PEER, A_HOST)):
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", f"{ns}h", "type", "veth", "peer", "name", f"{ns}n")
            sh("ip", "link", "set", f"{ns}n", "netns", ns)
            sh("ip", "addr", "add", f"{host}/24", "dev", f"{ns}h")
            sh("ip", "link", "set", f"{ns}h", "up")
            sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{peer}/24", "dev", f"{ns}n")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", f"{ns}n", "up")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
            # each side reaches the relay's two addresses on the host, and nothing of the other side
            sh("ip", "netns", "exec", ns, "ip", "route", "add", f"{other_host}/32", "via", host)
        yield a, b
    finally:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
            subprocess.run(["ip", "link", "del", f"{ns}h"], capture_output=True, timeout=10)


@pytest.fixture
def coturn(namespaces: tuple[str, str], tmp_path: Path) -> Iterator[Path]:
    binary = shutil.which("turnserver")
    assert binary, "coturn is not installed (.ci/run installs it)"
    log = tmp_path / "turn.log"  # coturn_config logs there
    config = tmp_path / "turnserver.conf"
    config.write_text(
        coturn_config(
            "relay-secret",
            tmp_path,
            listening_ips=[A_HOST, B_HOST],
            relay_ip=A_HOST,
            port=3478,
            min_port=49160,
            max_port=49260,
        )
    )
    process = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    yield log
    process.terminate()
    process.wait(timeout=10)


def in_namespace(ns: str, *args: str) -> list[str]:
    return ["ip", "netns", "exec", ns, sys.executable, *args]


async def test_the_call_connects_through_the_relay_with_the_direct_path_blocked(
    namespaces: tuple[str, str], coturn: Path, tmp_path: Path
) -> None:
    a, b = namespaces
    blocked = await asyncio.to_thread(
        subprocess.run,
        in_namespace(
            b, "-c", f"import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('{A_PEER}', 9))"
        ),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert blocked.returncode != 0 and "Network is unreachable" in blocked.stderr  # no direct path

    token = "relay-test-token-0123456789"
    settings = SignalingSettings.load(
        {
            "host": "0.0.0.0",
            "port": 0,
            "ice_servers": [f"turn:{A_HOST}:3478?transport=udp"],
            "turn_secret": "relay-secret",
        }
    )
    env = {**os.environ, "AVATAR_TOKEN": token, "PYTHONPATH": str(ROOT)}
    measure = tmp_path / "local.json"
    async with SignalingService(settings, token) as service:
        port = service.port
        remote = await asyncio.create_subprocess_exec(
            *in_namespace(
                a,
                "-m",
                "avatar",
                "remote",
                "--source",
                "test-pattern",
                "--size",
                "256x256",
                "--signaling",
                f"http://{A_HOST}:{port}",
                "--room",
                "relay",
            ),
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            async with asyncio.timeout(60):
                await service.server.wait_for_peer(Role.REMOTE)
            local = await asyncio.create_subprocess_exec(
                *in_namespace(
                    b,
                    "-m",
                    "avatar",
                    "local",
                    "--signaling",
                    f"http://{B_HOST}:{port}",
                    "--room",
                    "relay",
                    "--input",
                    "none",
                    "--camera",
                    "none",
                    "--mic-out",
                    "none",
                    "--duration",
                    "3",
                    "--measure",
                    str(measure),
                ),
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            async with asyncio.timeout(90):
                _, stderr = await local.communicate()
            assert local.returncode == 0, stderr.decode()[-2000:]
        finally:
            remote.terminate()
            await remote.wait()
    report = json.loads(await asyncio.to_thread(measure.read_text))
    assert report.get("frames", 0) > 40 and report["video_fps"] > 20, report  # media flows, at full rate
    assert "ALLOCATE processed, success" in await asyncio.to_thread(
        coturn.read_text
    )  # the media went through the relay


async def turn_allocate(port: int, username: str, password: str, protocol: int) -> stun.Message:
    """A TURN Allocate over TCP to 127.0.0.1:``port`` (long-term credentials), REQUESTED-TRANSPORT ``protocol``."""

    async def transact(message: stun.Message) -> stun.Message:
        writer.write(bytes(message))
        await writer.drain()
        head = await reader.readexactly(20)
        return stun.parse_message(head + await reader.readexactly(int.from_bytes(head[2:4], "big")))

    async with asyncio.timeout(10):
        while True:  # coturn takes a moment to listen
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.05)
    try:
        async with asyncio.timeout(10):
            attributes: dict[str, object] = {"REQUESTED-TRANSPORT": protocol << 24}
            challenge = await transact(stun.Message(stun.Method.ALLOCATE, stun.Class.REQUEST, attributes=attributes))
            realm, nonce = challenge.attributes["REALM"], challenge.attributes["NONCE"]
            request = stun.Message(
                stun.Method.ALLOCATE,
                stun.Class.REQUEST,
                attributes={**attributes, "USERNAME": username, "REALM": realm, "NONCE": nonce},
            )
            request.add_message_integrity(hashlib.md5(f"{username}:{realm}:{password}".encode()).digest())
            return await transact(request)
    finally:
        writer.close()


async def test_the_relay_refuses_tcp_allocations(tmp_path: Path) -> None:
    """Regression: with TCP allocations (RFC 6062) any holder of TURN credentials, viewers included, could make
    coturn open TCP connections from the box to any non-loopback address it reaches (tried: it connected)."""
    binary = shutil.which("turnserver")
    assert binary, "coturn is not installed (.ci/run installs it)"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "turnserver.conf"
    config.write_text(
        coturn_config(
            "relay-secret", tmp_path, ["127.0.0.1"], relay_ip="127.0.0.1", port=port, min_port=49300, max_port=49340
        )
    )
    process = await asyncio.create_subprocess_exec(
        binary, "-c", str(config), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        username, password = turn_credentials("relay-secret", "viewer-peer", 600)
        udp = await turn_allocate(port, username, password, socket.IPPROTO_UDP)
        assert udp.message_class is stun.Class.RESPONSE  # the credentials are good: WebRTC's UDP relay works
        tcp = await turn_allocate(port, username, password, socket.IPPROTO_TCP)
        assert tcp.message_class is stun.Class.ERROR and tcp.error_code == 442
    finally:
        process.terminate()
        async with asyncio.timeout(10):
            await process.wait()
