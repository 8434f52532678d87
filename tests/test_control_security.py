"""The local control endpoint as an attacker sees it: web pages, DNS rebinding and other users' programs must not
steer the clone. Regression guard for issue 17: any request reaching 127.0.0.1:8766 used to be obeyed."""

from __future__ import annotations

import asyncio
import logging
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from avatar.main import main as avatar_main
from peer_local.control import LiveControl
from peer_local.control_http import ControlServer
from peer_local.control_secret import read_secret, secret_path, write_secret
from peer_local.in_charge import control_banner
from peer_local.service import LocalPeer
from peer_local.settings import LocalSettings
from signaling.server import SignalingService
from tests.collecting_sink import CollectingSink
from tests.peer_helpers import peer_fields, run_avatar

CORS_HEADERS = ("Access-Control-Allow-Origin", "Access-Control-Allow-Headers", "Access-Control-Allow-Methods")
UNCHANGED = {"mode": "clone", "muted": False, "answering": True, "skips": 0, "answer": "addressed"}


@pytest.fixture
def control(signaling: SignalingService, token: str) -> LiveControl:
    return LiveControl(LocalPeer(LocalSettings.load(peer_fields(signaling, token)), [CollectingSink()]))


@pytest.fixture
async def endpoint(
    control: LiveControl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[ControlServer]:
    """The endpoint on a free port; its secret file goes under a private XDG_STATE_HOME (where children look too)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    server = ControlServer(control, 0)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def call(
    server: ControlServer, method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, object], aiohttp.typedefs.LooseHeaders]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method, f"http://127.0.0.1:{server.port}{path}", headers=headers, timeout=aiohttp.ClientTimeout(total=5)
        ) as response,
    ):
        body = await response.json() if response.content_type == "application/json" else {}
        return response.status, body, response.headers


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("POST", "/control/mute", {}, 401),
        ("POST", "/control/mute", {"Authorization": "Bearer wrong"}, 401),
        ("POST", "/control/mute", {"Authorization": "Basic d3Jvbmc="}, 401),
        ("POST", "/control/launch-missiles", {"Authorization": "Bearer wrong"}, 401),  # not 404: no hint
        ("GET", "/control", {}, 401),
        ("GET", "/nothing-here", {}, 401),
        ("POST", "/control/mute", {"Origin": "http://evil.example", "Content-Type": "text/plain", "RIGHT": ""}, 403),
        ("POST", "/control/mute", {"Origin": "null", "RIGHT": ""}, 403),
        ("POST", "/control/mute", {"Sec-Fetch-Site": "cross-site", "RIGHT": ""}, 403),
        ("POST", "/control/mute", {"Host": "evil.example:PORT", "RIGHT": ""}, 403),
        ("GET", "/control", {"Host": "evil.example:PORT", "RIGHT": ""}, 403),  # a DNS-rebinding page reading state
        ("GET", "/control", {"Host": "evil.example:PORT"}, 403),
        ("GET", "/control", {"Host": "127.0.0.1:1", "RIGHT": ""}, 403),  # another port: a proxy or forwarder
        ("OPTIONS", "/control/mute", {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}, 403),
        ("OPTIONS", "/control/mute", {"Access-Control-Request-Headers": "authorization"}, 401),
    ],
    ids=[
        "no-secret",
        "wrong-secret",
        "basic-auth",
        "unknown-action-wrong-secret",
        "state-without-secret",
        "unknown-path",
        "foreign-origin",
        "null-origin",
        "cross-site-fetch",
        "foreign-host",
        "state-from-foreign-host",
        "state-from-foreign-host-without-secret",
        "wrong-port-in-host",
        "cors-preflight",
        "preflight-without-origin",
    ],
)
async def test_refused_requests_change_nothing_and_tell_nothing(
    endpoint: ControlServer, control: LiveControl, method: str, path: str, headers: dict[str, str], status: int
) -> None:
    sent = {k: v.replace("PORT", str(endpoint.port)) for k, v in headers.items() if k != "RIGHT"}
    if "RIGHT" in headers:  # the right secret: the check under test refuses on its own
        sent.update(bearer(endpoint.secret))
    answer, body, response_headers = await call(endpoint, method, path, sent)
    assert answer == status
    assert set(body) == {"error"}  # no state in a refusal
    assert not any(name in response_headers for name in CORS_HEADERS)
    assert control.state() == UNCHANGED


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "LOCALHOST"])
async def test_the_right_secret_from_this_machine_is_obeyed(
    endpoint: ControlServer, control: LiveControl, host: str
) -> None:
    headers = {**bearer(endpoint.secret), "Host": f"{host}:{endpoint.port}"}
    status, body, response_headers = await call(endpoint, "POST", "/control/mute", headers)
    assert (status, body["muted"]) == (200, True) and control.muted
    own_origin = {**headers, "Origin": f"http://127.0.0.1:{endpoint.port}"}
    assert (await call(endpoint, "POST", "/control/skip", own_origin))[1]["skips"] == 1
    status, body, _ = await call(endpoint, "GET", "/control", headers)
    assert status == 200 and body == {**UNCHANGED, "muted": True, "answering": False, "skips": 1}
    assert not any(name in response_headers for name in CORS_HEADERS)
    status, body, _ = await call(endpoint, "POST", "/control/launch-missiles", headers)
    assert status == 404 and "one of take-over" in str(body["error"])  # authenticated: now it may say why


async def test_the_secret_file_is_the_users_alone_and_goes_with_the_run(
    control: LiveControl, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = ControlServer(control, 0, secret_dir=tmp_path / "state")
    await server.start()
    path = secret_path(server.port, tmp_path / "state")
    try:
        assert server.secret_file == path
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert read_secret(server.port, tmp_path / "state") == server.secret
        assert len(server.secret) >= 43  # 32 random bytes
        await call(server, "POST", "/control/mute", {"Authorization": "Bearer wrong"})
        await call(server, "POST", "/control/mute", bearer(server.secret))
    finally:
        await server.stop()
    assert not path.exists()
    assert all(server.secret not in record.getMessage() for record in caplog.records)  # never logged
    assert any("refused 127.0.0.1: POST /control/mute: 401" in record.getMessage() for record in caplog.records)
    another = ControlServer(control, 0, secret_dir=tmp_path / "state")
    assert another.secret != server.secret  # per run


def test_a_secret_file_from_an_earlier_run_is_replaced_not_reused(tmp_path: Path) -> None:
    stale = write_secret(8766, "old", tmp_path)
    stale.chmod(0o644)  # as if someone loosened it
    path = write_secret(8766, "new", tmp_path)
    assert path == stale and path.read_text().strip() == "new" and stat.S_IMODE(path.stat().st_mode) == 0o600


async def avatar_control(*args: str) -> tuple[int, str, str]:
    """``avatar control ARGS`` in a child process (it inherits XDG_STATE_HOME), bounded in time."""
    return await run_avatar("control", *args, timeout_s=60)


@pytest.mark.slow
async def test_avatar_control_reads_the_secret_and_drives_the_endpoint(
    endpoint: ControlServer, control: LiveControl
) -> None:
    code, out, err = await avatar_control("take-over", "--port", str(endpoint.port))
    assert (code, err) == (0, "") and '"mode": "person"' in out
    assert control.mode == "person"
    write_secret(endpoint.port, "a-stale-secret")  # another program's file on this port
    code, out, err = await avatar_control("hand-back", "--port", str(endpoint.port))
    assert code == 1 and "refused (401)" in err and out == ""
    assert control.mode == "person"


async def test_avatar_control_says_clearly_what_is_wrong(
    endpoint: ControlServer, control: LiveControl, capsys: pytest.CaptureFixture[str]
) -> None:
    port = str(endpoint.port)
    assert await asyncio.to_thread(avatar_main, ["control", "mute", "--port", port]) == 0
    assert '"muted": true' in capsys.readouterr().out and control.muted
    assert await asyncio.to_thread(avatar_main, ["control", "state", "--port", port]) == 0
    assert '"muted": true' in capsys.readouterr().out
    assert await asyncio.to_thread(avatar_main, ["control", "unmute", "--port", "1"]) == 1
    assert "no control secret at" in capsys.readouterr().err
    secret_file = endpoint.secret_file
    assert secret_file is not None
    await endpoint.stop()
    assert await asyncio.to_thread(avatar_main, ["control", "unmute", "--port", port]) == 1
    assert "is `avatar local` (or `avatar demo`) running" in capsys.readouterr().err
    write_secret(int(port), "left-over")  # a file left by a killed run, nobody listening
    assert await asyncio.to_thread(avatar_main, ["control", "unmute", "--port", port]) == 1
    assert f"nothing listens on 127.0.0.1:{port}" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        avatar_main(["control", "launch-missiles"])
    assert control.muted


CROSS_SITE_PAGE = """<!doctype html><html><body><script>
const target = "TARGET";
const secret = "SECRET";  // the worst case: the page even knows this run's secret
async function attempt(name, run) {
  try { return [name, await run()]; } catch (error) { return [name, "refused: " + error.name]; }
}
function formPost(action) {
  return new Promise((resolve) => {
    const sink = document.createElement("iframe");
    sink.name = "sink";
    sink.onload = () => resolve("form sent");
    document.body.appendChild(sink);
    const form = document.createElement("form");
    form.method = "POST"; form.action = action; form.target = "sink";
    document.body.appendChild(form);
    form.submit();
  });
}
window.attack = Promise.all([
  attempt("no-cors", async () => (await fetch(target + "/mute", {method: "POST", mode: "no-cors"})).type),
  attempt("no-cors-with-secret", async () => (await fetch(target + "/hand-back", {
    method: "POST", mode: "no-cors", headers: {"Authorization": "Bearer " + secret}})).type),
  attempt("cors-with-secret", async () => (await fetch(target + "/take-over", {
    method: "POST", headers: {"Authorization": "Bearer " + secret}})).status),
  attempt("read-state", async () => await (await fetch(target, {headers: {"Authorization": "Bearer " + secret}})).text()),
  attempt("form", () => formPost(target + "/skip")),
]).then(Object.fromEntries);
</script></body></html>"""


@pytest.mark.slow
async def test_a_page_from_another_origin_cannot_change_the_state(
    endpoint: ControlServer, control: LiveControl, browser: Any
) -> None:
    """Headless Chromium (Debian's) opens a page served from another 127.0.0.1 port, which attacks the endpoint."""
    from aiohttp import web

    page_html = CROSS_SITE_PAGE.replace("TARGET", f"http://127.0.0.1:{endpoint.port}/control")
    page_html = page_html.replace("SECRET", endpoint.secret)

    async def serve_page(request: web.Request) -> web.Response:
        return web.Response(text=page_html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", serve_page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    page_port = runner.addresses[0][1]
    try:
        page = await browser.new_page()
        await page.goto(f"http://127.0.0.1:{page_port}/")
        async with asyncio.timeout(20):
            results = await page.evaluate("window.attack")
    finally:
        await runner.cleanup()
    assert results["no-cors"] == "opaque"  # sent, answer unreadable...
    assert results["no-cors-with-secret"] == "opaque"  # ...the browser drops the header in no-cors mode
    assert results["cors-with-secret"] == "refused: TypeError"  # the preflight is refused
    assert results["read-state"] == "refused: TypeError"
    assert results["form"] == "form sent"
    assert control.state() == UNCHANGED  # ...and nothing changed
    assert endpoint.refusals[403] >= 5  # every attempt reached the endpoint and was refused on its Origin


@pytest.mark.parametrize("command", ["local", "demo"])
def test_the_help_says_how_to_authenticate(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        avatar_main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "'Authorization: Bearer SECRET'" in text and "avatar control ACTION" in text


async def test_a_flood_of_refused_requests_logs_one_line(
    endpoint: ControlServer, control: LiveControl, caplog: pytest.LogCaptureFixture
) -> None:
    """A web page looping no-cors requests must not flood the person's terminal with warnings."""
    caplog.set_level(logging.WARNING, logger="peer_local.control_http")
    for _ in range(50):
        assert (await call(endpoint, "POST", "/control/mute", {"Origin": "http://evil.example"}))[0] == 403
    assert endpoint.refusals[403] == 50 and control.state() == UNCHANGED
    assert len([r for r in caplog.records if r.name == "peer_local.control_http"]) == 1


def test_the_terminal_banner_shows_the_secret_only_on_a_terminal(control: LiveControl, tmp_path: Path) -> None:
    server = ControlServer(control, 8766, secret_dir=tmp_path)
    server.secret_file = secret_path(8766, tmp_path)
    on_terminal = control_banner(server, show_secret=True)
    in_a_log = control_banner(server, show_secret=False)
    assert f"'Authorization: Bearer {server.secret}'" in on_terminal and str(server.secret_file) in on_terminal
    assert server.secret not in in_a_log and str(server.secret_file) in in_a_log
    assert "`avatar control ACTION`" in in_a_log  # the default port needs no --port


async def test_without_a_place_for_the_secret_the_endpoint_does_not_run(control: LiveControl, tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    server = ControlServer(control, 0, secret_dir=blocked)
    with pytest.raises(OSError):
        await server.start()
    with pytest.raises(aiohttp.ClientConnectionError):
        await call(server, "GET", "/control")  # nothing listens: no endpoint whose secret nobody can read
