"""``avatar signaling`` as a real process: token policy, join URL, signals, settings precedence."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr

from avatar.main import main
from signaling.settings import SignalingSettings

AVATAR = [sys.executable, "-m", "avatar"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVATAR_")}
    env.update(extra)
    return env


async def _read_line_matching(stream: asyncio.StreamReader, pattern: str, within_s: float = 20.0) -> re.Match[str]:
    async with asyncio.timeout(within_s):
        while True:
            line = (await stream.readline()).decode()
            assert line, f"process ended before printing {pattern!r}"
            match = re.search(pattern, line)
            if match:
                return match


async def test_refuses_non_loopback_bind_without_token() -> None:
    process = await asyncio.create_subprocess_exec(
        *AVATAR,
        "signaling",
        "--host",
        "0.0.0.0",
        "--port",
        "0",
        env=_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        _, stderr = await process.communicate()
    assert process.returncode == 2
    assert b"refusing to listen on 0.0.0.0 without a token" in stderr


async def test_generated_token_join_url_works_and_sigterm_says_bye_and_exits_0() -> None:
    process = await asyncio.create_subprocess_exec(
        *AVATAR,
        "signaling",
        "--port",
        "0",
        env=_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    try:
        match = await _read_line_matching(
            process.stdout, r"join URL: (http://127\.0\.0\.1:(\d+)/\?room=demo&token=(\S+))"
        )
        port, token = match.group(2), match.group(3)
        url = f"ws://127.0.0.1:{port}/ws?room=demo&role=remote&token={token}"
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            welcome = json.loads((await ws.receive(timeout=5)).data)
            assert welcome["type"] == "welcome"
            process.send_signal(signal.SIGTERM)
            bye = json.loads((await ws.receive(timeout=10)).data)
            assert bye["type"] == "bye" and bye["reason"] == "server-shutdown"
        async with asyncio.timeout(15):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_settings_precedence_is_cli_then_env_then_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "avatar.toml"
    config.write_text("port = 1000\nheartbeat_s = 3.0\n[signaling]\nport = 2000\nmax_viewers_per_room = 4\n")
    monkeypatch.setenv("AVATAR_PORT", "3000")
    monkeypatch.setenv("AVATAR_TOKEN", "from-env-secret")
    settings = SignalingSettings.load({"port": None, "heartbeat_s": None}, config, "signaling")
    assert settings.port == 3000  # env beats TOML
    assert settings.max_viewers_per_room == 4 and settings.heartbeat_s == 3.0
    assert SignalingSettings.load({"port": 4000}, config, "signaling").port == 4000  # CLI beats env
    assert isinstance(settings.token, SecretStr)
    assert "from-env-secret" not in repr(settings) and "from-env-secret" not in str(settings.model_dump())


def test_bad_config_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("port = [unclosed")
    assert main(["signaling", "--config", str(broken)]) == 2
    assert "is not valid TOML" in capsys.readouterr().err
    assert main(["signaling", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "config file not found" in capsys.readouterr().err
    assert main(["signaling", "--port", "99999"]) == 2
    assert "invalid settings: port" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["signaling", "remote", "local", "bench"])
def test_every_subcommand_explains_its_options(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for option in re.findall(r"^\s+(--[a-z-]+)", text, flags=re.M):
        assert re.search(rf"{option}[^\n]*\n?\s+\S", text), f"{command} {option} has no help"
