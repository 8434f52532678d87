"""The GPU box entrypoint: config generation, health waiting, restarts, /healthz, model fetching.

Docker and GPUs are absent here, so vLLM and Fish Speech are played by STAND-IN processes
(tests/sidecar_stand_in.py) launched through the exact command lines the box generates; coturn is the real one.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from avatar.main import main as avatar_main
from peer_remote.box.model_fetch import FISH_SPEECH_FILES, MUSETALK_FILES, fetch_models, missing_files
from peer_remote.box.plan import (
    advertised_turn_urls,
    coturn_spec,
    fish_spec,
    remote_spec,
    sidecar_specs,
    vllm_spec,
)
from peer_remote.box.runner import Box
from peer_remote.box.settings import BoxSettings
from peer_remote.box.sidecar import Sidecar, SidecarError, SidecarGroup, SidecarSpec
from peer_remote.face.musetalk_models import check_models_dir

STAND_IN = Path(__file__).with_name("sidecar_stand_in.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stand_in_spec(
    name: str = "vllm",
    timeout_s: float = 30.0,
    backoff_s: float = 0.5,
    env: dict[str, str] | None = None,
    starts_after: tuple[str, ...] = (),
) -> SidecarSpec:
    port = free_port()
    return SidecarSpec(
        name=name,
        argv=(sys.executable, str(STAND_IN), "--port", str(port)),
        health_url=f"http://127.0.0.1:{port}/health",
        health_timeout_s=timeout_s,
        restart_backoff_s=backoff_s,
        env=env or {},
        starts_after=starts_after,
    )


def test_vllm_and_fish_command_lines_follow_the_settings(tmp_path: Path) -> None:
    settings = BoxSettings.load(
        {"token": "t", "llm_max_model_len": 4096, "llm_gpu_memory_utilization": 0.4, "models_dir": tmp_path}
    )
    vllm = vllm_spec(settings)
    argv = " ".join(vllm.argv)
    assert vllm.argv[:3] == ("vllm", "serve", "INSAIT-Institute/MamayLM-Gemma-2-9B-IT-v0.1")
    assert "--max-model-len 4096" in argv and "--gpu-memory-utilization 0.40" in argv
    assert "--quantization bitsandbytes" in argv and "--host 127.0.0.1" in argv
    assert "--kv-cache-memory-bytes 2147483648" in argv  # a fixed KV budget (issue 16, defect 6)
    assert vllm.health_url == "http://127.0.0.1:8000/health"
    assert vllm.env["HF_HOME"] == str(tmp_path / "huggingface")

    fish = fish_spec(settings)
    assert fish.argv[1:3] == ("-m", "tools.api_server")
    assert "--listen 127.0.0.1:8081" in " ".join(fish.argv)
    assert "/models/fish-speech-1.5/firefly-gan-vq-fsq-8x1024-21hz-generator.pth" in fish.argv
    assert fish.health_url == "http://127.0.0.1:8081/v1/health" and fish.cwd == "/opt/fish-speech"
    assert fish.health_method == "POST"  # fish-speech v1.5.0 registers /v1/health for POST only
    planned = {spec.name: spec for spec in sidecar_specs(settings, "turn-secret")}
    assert planned["fish-speech"].starts_after == ("vllm",) and planned["vllm"].starts_after == ()

    remote = remote_spec(settings, "http://127.0.0.1:8765", "secret-token")
    assert "secret-token" not in remote.argv  # the token travels in the environment, not in `ps`
    assert remote.env["AVATAR_TOKEN"] == "secret-token"
    joined = " ".join(remote.argv)
    assert "--llm-url http://127.0.0.1:8000/v1" in joined and "--fish-url http://127.0.0.1:8081" in joined


def test_a_box_with_several_rooms_starts_one_avatar_that_joins_each_of_them(monkeypatch: pytest.MonkeyPatch) -> None:
    assert BoxSettings.load({"token": "t"}).room_names() == ["demo"]
    settings = BoxSettings.load({"token": "t", "room": "alice", "rooms": ["alice", "bob"]})
    argv = list(remote_spec(settings, "http://127.0.0.1:8765", "t").argv)
    assert [argv[i + 1] for i, arg in enumerate(argv) if arg == "--room"] == ["alice", "bob"]
    monkeypatch.setenv("AVATAR_ROOMS", '["carol", "dave"]')
    assert BoxSettings.load({"token": "t"}).room_names() == ["carol", "dave"]


def test_coturn_config_and_advertised_urls_follow_vast_port_mapping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUBLIC_IPADDR", "203.0.113.7")
    monkeypatch.setenv("VAST_TCP_PORT_3478", "41001")
    monkeypatch.setenv("VAST_UDP_PORT_3478", "41002")
    settings = BoxSettings.load({"token": "t", "state_dir": tmp_path})
    spec = coturn_spec(settings, "turn-secret")
    config = tmp_path / "turnserver.conf"
    text = config.read_text()
    assert spec.argv == ("turnserver", "-c", str(config))
    assert "use-auth-secret" in text and "static-auth-secret=turn-secret" in text
    assert "external-ip=203.0.113.7" in text and "listening-port=3478" in text
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert advertised_turn_urls(settings) == [
        "turn:203.0.113.7:41002?transport=udp",
        "turn:203.0.113.7:41001?transport=tcp",
    ]
    monkeypatch.delenv("VAST_UDP_PORT_3478")
    assert advertised_turn_urls(BoxSettings.load({"token": "t"})) == ["turn:203.0.113.7:41001?transport=tcp"]


def test_box_refuses_to_start_without_a_token(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AVATAR_TOKEN", raising=False)
    assert avatar_main(["box", "--no-fetch-models"]) == 2
    assert "needs AVATAR_TOKEN" in capsys.readouterr().err


async def test_waits_for_health_with_progress_lines(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("STANDIN_READY_AFTER", "1.0")
    sidecar = Sidecar(stand_in_spec())
    caplog.set_level("INFO", logger="peer_remote.box.sidecar")
    try:
        await asyncio.wait_for(sidecar.start(progress_every_s=0.2), 20)
        assert sidecar.state == "running" and sidecar.healthy.is_set()
        progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("waiting for vllm")]
        assert progress, "no progress while waiting"
        assert "stand-in loading weights" in progress[-1]  # progress shows the sidecar's last output line
    finally:
        await sidecar.stop()
    assert sidecar.state == "stopped"


async def test_a_sidecar_that_never_gets_healthy_fails_with_its_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_NEVER_READY", "1")
    sidecar = Sidecar(stand_in_spec(timeout_s=1.5))
    with pytest.raises(SidecarError, match=r"vllm not healthy .* after 2 s") as caught:
        await asyncio.wait_for(sidecar.start(progress_every_s=0.5), 20)
    assert "stand-in loading weights" in str(caught.value)
    assert sidecar.state == "failed"
    assert sidecar._process is not None and sidecar._process.returncode is not None  # not left running


async def test_a_sidecar_that_exits_while_loading_reports_its_exit_code() -> None:
    spec = SidecarSpec(
        name="fish-speech",
        argv=(sys.executable, "-c", "print('error: no checkpoint at /models/fish-speech-1.5'); raise SystemExit(2)"),
        health_url=f"http://127.0.0.1:{free_port()}/v1/health",
        health_timeout_s=30,
    )
    with pytest.raises(SidecarError, match="exited with code 2") as caught:
        await asyncio.wait_for(Sidecar(spec).start(), 20)
    assert "no checkpoint" in str(caught.value)


def fish_speech_checkout(tmp_path: Path) -> Path:
    """A Fish Speech directory whose ``python -m tools.api_server`` is the STAND-IN (as Fish Speech v1.5.0)."""
    fish_dir = tmp_path / "fish-speech"
    (fish_dir / "tools").mkdir(parents=True)
    (fish_dir / "tools" / "__init__.py").write_text("")
    (fish_dir / "tools" / "api_server.py").write_text(
        f"import runpy\nrunpy.run_path({str(STAND_IN)!r}, run_name='__main__')\n"
    )
    return fish_dir


async def test_the_fish_speech_sidecar_gets_healthy_on_its_post_only_health_route(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STANDIN_READY_AFTER", "0.5")
    settings = BoxSettings.load(
        {
            "token": "t",
            "fish_python": sys.executable,
            "fish_dir": fish_speech_checkout(tmp_path),
            "fish_port": free_port(),
            "health_timeout_s": 15,  # asking with GET gets 405 until this runs out
        }
    )
    sidecar = Sidecar(fish_spec(settings))
    try:
        await asyncio.wait_for(sidecar.start(progress_every_s=5), 30)
        assert sidecar.state == "running" and sidecar.healthy.is_set()
    finally:
        await sidecar.stop()


async def test_a_sidecar_whose_prerequisite_fails_is_never_started() -> None:
    group = SidecarGroup(
        [
            stand_in_spec("vllm", timeout_s=1.5, env={"STANDIN_NEVER_READY": "1"}),
            stand_in_spec("fish-speech", starts_after=("vllm",)),
        ]
    )
    with pytest.raises(SidecarError, match="vllm not healthy"):
        await asyncio.wait_for(group.start(progress_every_s=0.5), 20)
    fish = group["fish-speech"]
    assert fish.pid is None and fish.state == "stopped"


@pytest.fixture
def stand_in_box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[BoxSettings]:
    """Box settings whose vLLM and Fish Speech command lines start STAND-INs; coturn is real."""
    assert shutil.which("turnserver"), "coturn is not installed (.ci/run installs it)"
    vllm = tmp_path / "bin" / "vllm"
    vllm.parent.mkdir()
    vllm.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STAND_IN}" "$@"\n')
    vllm.chmod(0o755)
    fish_dir = fish_speech_checkout(tmp_path)
    monkeypatch.setenv("STANDIN_READY_AFTER", "0.5")
    monkeypatch.delenv("PUBLIC_IPADDR", raising=False)
    yield BoxSettings.load(
        {
            "host": "127.0.0.1",
            "port": 0,
            "token": "box-token",
            "fetch_models": False,
            "vllm_command": str(vllm),
            "vllm_port": free_port(),
            "fish_python": sys.executable,
            "fish_dir": fish_dir,
            "fish_port": free_port(),
            "turn_port": free_port(),
            "state_dir": tmp_path / "state",
            "remote_args": ["--llm", "embedded", "--tts", "piper", "--face", "portrait", "--source", "test-pattern"],
            "health_timeout_s": 60,
            "restart_backoff_s": 1.0,
        }
    )


async def healthz(port: int) -> tuple[int, dict]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/healthz", timeout=aiohttp.ClientTimeout(total=5)) as response,
    ):
        return response.status, await response.json()


@pytest.mark.slow
async def test_box_starts_everything_reports_on_healthz_and_restarts_a_crashed_sidecar(
    stand_in_box: BoxSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    box = Box(stand_in_box)
    stop = asyncio.Event()
    port_seen: list[int] = []
    original = box._start_all

    async def remember_port(signaling_port: int) -> None:
        port_seen.append(signaling_port)
        await original(signaling_port)

    box._start_all = remember_port  # type: ignore[method-assign]
    run = asyncio.create_task(box.run(stop))
    try:
        await asyncio.wait_for(box.ready.wait(), 90)
        port = port_seen[0]
        status, body = await healthz(port)
        assert status == 200 and body["status"] == "ok"
        assert set(body["components"]) == {"coturn", "vllm", "fish-speech", "avatar-remote"}
        assert all(c["state"] == "running" and c["restarts"] == 0 for c in body["components"].values())
        assert body["peers"] == 1  # the avatar peer joined its room
        printed = capsys.readouterr().out
        laptop = f"on the laptop: avatar local --signaling http://127.0.0.1:{port} --room {stand_in_box.room}"
        assert f"{laptop} --input loopback" in printed  # the clone listens to the meeting
        assert stand_in_box.token is not None and stand_in_box.token.get_secret_value() not in printed

        vllm = box.sidecars["vllm"]
        degraded = asyncio.Event()
        recovered = asyncio.Event()
        seen: list[tuple[int, dict]] = []

        def on_change(sidecar: Sidecar) -> None:
            if sidecar.state == "restarting":
                degraded.set()
            elif sidecar.state == "running" and sidecar.restarts == 1:
                recovered.set()

        vllm.on_change = on_change
        assert vllm.pid is not None
        os.kill(vllm.pid, signal.SIGKILL)
        await asyncio.wait_for(degraded.wait(), 10)
        seen.append(await healthz(port))  # inside the 1 s restart backoff
        await asyncio.wait_for(recovered.wait(), 30)
        seen.append(await healthz(port))
        (during_status, during), (after_status, after) = seen
        assert during_status == 503 and during["status"] == "degraded"
        assert during["components"]["vllm"]["state"] == "restarting"
        assert during["components"]["vllm"]["last_exit"] == -signal.SIGKILL
        assert after_status == 200 and after["status"] == "ok"
        assert after["components"]["vllm"]["restarts"] == 1
    finally:
        stop.set()
        await asyncio.wait_for(run, 30)
    assert all(s.state == "stopped" for s in box.sidecars.sidecars)
    assert box.remote is not None and box.remote.state == "stopped"


@pytest.mark.slow
async def test_fish_speech_starts_only_once_vllm_is_healthy(stand_in_box: BoxSettings) -> None:
    """Regression (issue 16, defect 6): vLLM loads alone, so Fish Speech's memory cannot shrink its KV cache."""
    box = Box(stand_in_box)
    vllm, fish = box.sidecars["vllm"], box.sidecars["fish-speech"]
    fish_changes: list[tuple[str, str, bool]] = []
    fish.on_change = lambda sidecar: fish_changes.append((sidecar.state, vllm.state, vllm.healthy.is_set()))
    try:
        await asyncio.wait_for(box.sidecars.start(progress_every_s=0.2), 60)
    finally:
        await box.sidecars.stop()
    assert fish_changes[0] == ("starting", "running", True)
    assert ("running", "running", True) in fish_changes


def test_fetch_models_writes_the_musetalk_layout_once(tmp_path: Path) -> None:
    source = tmp_path / "hub"
    calls: list[tuple[str, str]] = []

    def fake_hub_download(repo_id: str, filename: str) -> Path:  # a FAKE hub: no network here
        calls.append((repo_id, filename))
        path = source / repo_id / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"{repo_id}/{filename}".encode())
        return path

    models = tmp_path / "models"
    fetched = fetch_models(models, MUSETALK_FILES + FISH_SPEECH_FILES, fake_hub_download)
    assert len(fetched) == len(calls) == len(MUSETALK_FILES) + len(FISH_SPEECH_FILES)
    check_models_dir(models)  # the face backend accepts the layout
    assert (models / "musetalkV15" / "unet.pth").read_bytes() == b"TMElyralab/MuseTalk/musetalkV15/unet.pth"
    assert not list(models.rglob("*.partial"))
    assert fetch_models(models, MUSETALK_FILES, fake_hub_download) == []  # second start: nothing fetched
    (models / "sd-vae" / "config.json").write_bytes(b"")  # a truncated file counts as missing
    assert [f.target for f in missing_files(models, MUSETALK_FILES)] == ["sd-vae/config.json"]


@pytest.mark.slow
def test_smoke_reports_every_backend_and_fails_on_an_unreachable_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "smoke.json"
    code = avatar_main(
        [
            "smoke",
            "--tts",
            "fish",
            "--fish-url",
            f"http://127.0.0.1:{free_port()}",
            "--frames",
            "25",
            "--json",
            str(report),
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    result = json.loads(report.read_text())
    llm, tts, face = (result["checks"][k] for k in ("llm", "tts", "face"))
    assert llm["ok"] and llm["first_token_ms"] > 0 and llm["text"]
    assert not tts["ok"] and "127.0.0.1" in tts["error"]
    assert face["ok"] and face["fps"] > 0 and face["frames"] == 25
    assert "ms to first token" in out and "tts   FAIL" in out and "fps at 512x512" in out

    assert not result["checks"]["lip_sync"]["ok"]  # it needs the clause the unreachable voice did not speak

    assert avatar_main(["smoke", "--frames", "10"]) == 0  # the embedded CPU backends all pass
    out = capsys.readouterr().out
    assert "ms to first audio" in out and "ms mouth behind voice" in out
