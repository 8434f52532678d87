"""`avatar deploy vast`: the real vastai SDK against a FAKE Vast.ai API (recorded responses), and a real
signaling server standing in for the box's /healthz. No network leaves 127.0.0.1."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from avatar.main import main as avatar_main
from signaling.server import SignalingService
from signaling.settings import SignalingSettings
from tests.fake_vast_api import fake_vast_api

API_KEY = "fake-vast-key-0123"
TOKEN = "room-token-abcdef"


@pytest.fixture(autouse=True)
def vast_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VAST_API_KEY", API_KEY)
    monkeypatch.setenv("AVATAR_TOKEN", TOKEN)
    monkeypatch.setenv("HF_TOKEN", "hf-gated-licence-token")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


class StartingComponents:
    """The box's components as /healthz shows them: loading for the first ``loading_reads`` reads."""

    def __init__(self, loading_reads: int) -> None:
        self.reads = 0
        self.loading_reads = loading_reads

    def __call__(self) -> dict[str, dict[str, Any]]:
        self.reads += 1
        state = "starting" if self.reads <= self.loading_reads else "running"
        return {"vllm": {"state": state, "restarts": 0}, "fish-speech": {"state": "running", "restarts": 0}}


async def test_create_rents_the_cheapest_offer_waits_for_health_and_prints_the_laptop_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = SignalingSettings.load({"host": "127.0.0.1", "port": 0})
    async with SignalingService(settings, TOKEN) as box:
        box.server.components = StartingComponents(loading_reads=2)
        with fake_vast_api(signaling_port=box.port, loading_polls=1) as api:
            code = await asyncio.to_thread(
                avatar_main,
                [
                    "deploy",
                    "vast",
                    "--api-url",
                    api.url,
                    "create",
                    "--image",
                    "registry.example/avatar-box:1",
                    "--poll",
                    "0.05",
                    "--timeout",
                    "30",
                ],
            )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "created instance 9753186" in out
    assert "instance 9753186: loading Pulling image layers" in out
    assert "starting: vllm starting" in out and "box healthy at" in out
    assert f"avatar local --signaling http://127.0.0.1:{box.port} --room demo --input loopback" in out
    assert TOKEN not in out and API_KEY not in out  # secrets never printed

    assert {r["authorization"] for r in api.requests} == {f"Bearer {API_KEY}"}
    search = next(r for r in api.requests if r["path"] == "/api/v0/bundles/")["json"]
    assert search["gpu_name"] == {"eq": "RTX 4090"} and str(search["num_gpus"]["eq"]) == "1"
    filters = {k: {op: str(v) for op, v in f.items()} for k, f in search.items() if isinstance(f, dict)}
    assert filters["reliability"] == {"gte": "0.98"} and filters["direct_port_count"] == {"gte": "4"}
    assert filters["dph_total"] == {"lte": "1.0"} and filters["inet_down"] == {"gte": "200"}
    assert filters["cuda_max_good"] == {"gte": "12.8"}  # vLLM 0.11's torch is a CUDA 12.8 build
    assert search["order"] == [["dph_total", "asc"]] and search["limit"] == 1
    create = next(r for r in api.requests if r["method"] == "PUT")
    assert create["path"] == "/api/v0/asks/24681357/"  # the cheapest offer
    body = create["json"]
    assert body["image"] == "registry.example/avatar-box:1" and body["label"] == "avatar-box"
    assert body["runtype"] == "args" and body["disk"] == 80
    env = body["env"]
    assert {"-p 8765:8765", "-p 3478:3478", "-p 3478:3478/udp"} <= set(env)
    assert env["AVATAR_TOKEN"] == TOKEN and env["HF_TOKEN"] == "hf-gated-licence-token"


def test_search_lists_offers_and_status_lists_only_avatar_boxes(capsys: pytest.CaptureFixture[str]) -> None:
    with fake_vast_api() as api:
        assert avatar_main(["deploy", "vast", "--api-url", api.url, "search", "--max-price", "0.5"]) == 0
        assert avatar_main(["deploy", "vast", "--api-url", api.url, "status"]) == 0
        assert avatar_main(["deploy", "vast", "--api-url", api.url, "destroy", "9753186"]) == 0
    out = capsys.readouterr().out
    assert "24681357  RTX 4090   $0.412/h  reliability 0.996" in out and "Ontario, CA" in out
    assert "9753186: running $0.412/h" in out and "1111111" not in out
    assert "destroyed instance 9753186" in out
    assert str(api.requests[0]["json"]["dph_total"]["lte"]) == "0.5"
    assert api.requests[-1]["method"] == "DELETE" and api.requests[-1]["path"] == "/api/v0/instances/9753186/"


async def test_create_gives_up_with_a_clear_message_when_the_box_never_gets_healthy(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = SignalingSettings.load({"host": "127.0.0.1", "port": 0})
    async with SignalingService(settings, TOKEN) as box:
        box.server.components = StartingComponents(loading_reads=10**9)
        with fake_vast_api(signaling_port=box.port, loading_polls=0) as api:
            code = await asyncio.to_thread(
                avatar_main,
                [
                    "deploy",
                    "vast",
                    "--api-url",
                    api.url,
                    "create",
                    "--offer",
                    "13572468",
                    "--image",
                    "img",
                    "--poll",
                    "0.05",
                    "--timeout",
                    "0.5",
                ],
            )
    err = capsys.readouterr().err
    assert code == 1
    assert "instance 9753186 not healthy after 0 s" in err and "vllm starting" in err
    assert "avatar deploy vast destroy" in err or "status 9753186" in err


def test_missing_key_token_or_image_are_clear_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with fake_vast_api() as api:
        monkeypatch.delenv("AVATAR_TOKEN")
        assert avatar_main(["deploy", "vast", "--api-url", api.url, "create", "--image", "img"]) == 2
        assert "set AVATAR_TOKEN first" in capsys.readouterr().err
        monkeypatch.setenv("AVATAR_TOKEN", TOKEN)
        monkeypatch.delenv("AVATAR_IMAGE", raising=False)
        assert avatar_main(["deploy", "vast", "--api-url", api.url, "create"]) == 2
        assert "pass --image" in capsys.readouterr().err
        monkeypatch.delenv("VAST_API_KEY")
        assert avatar_main(["deploy", "vast", "--api-url", api.url, "status"]) == 1
        assert "no Vast.ai API key" in capsys.readouterr().err
    assert not api.requests  # nothing was sent without a key or a token
