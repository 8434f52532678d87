"""CLI flags come from the settings fields, in one place: every field is its flag with its description and default
in ``--help``; a backend's own (nested) settings keep their flat flag, ``AVATAR_*`` and config names; flags beat the
environment, which beats the config file; no help string writes a default by hand."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from avatar.demo import DemoSettings
from avatar.help_format import default_text
from avatar.main import build_parser
from avatar.options import load_settings, settings_fields
from peer_local.asr.whisper import WhisperSettings
from peer_local.settings import ListeningSettings, LocalSettings
from peer_remote.box.settings import BoxSettings
from peer_remote.settings import RemoteSettings, SpeakingSettings
from signaling.settings import AvatarSettings, SignalingSettings

AVATAR_PACKAGE = Path(__file__).resolve().parent.parent / "avatar"

# (command line, its settings, the fields it sets otherwise than by their own flag)
COMMANDS: list[tuple[str, type[AvatarSettings], frozenset[str]]] = [
    ("remote", RemoteSettings, frozenset({"width", "height"})),  # --size
    ("local", LocalSettings, frozenset()),
    ("demo", DemoSettings, frozenset()),
    ("signaling", SignalingSettings, frozenset()),
    ("box", BoxSettings, frozenset()),
    ("say", SpeakingSettings, frozenset()),
    ("chat", SpeakingSettings, frozenset()),
    ("smoke", SpeakingSettings, frozenset()),
    ("bench turn", SpeakingSettings, frozenset()),
    (
        "transcribe",
        ListeningSettings,
        frozenset({"input", "half_duplex", "half_duplex_tail_ms", "early_answer"}),
    ),  # it reads a FILE, never the mic, and answers nothing
]


def help_text(words: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """``avatar WORDS --help`` with all whitespace removed (argparse wraps lines, also at hyphens)."""
    argv = [*words, "--help"]
    with pytest.raises(SystemExit):
        build_parser(argv).parse_args(argv)
    return "".join(capsys.readouterr().out.split())


def parse(words: list[str]) -> argparse.Namespace:
    return build_parser(words).parse_args(words)


@pytest.fixture(autouse=True)
def no_avatar_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in os.environ:
        if name.startswith("AVATAR_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(("command", "settings", "elsewhere"), COMMANDS, ids=[c for c, _, _ in COMMANDS])
def test_every_settings_field_is_a_flag_with_its_description_and_default(
    command: str, settings: type[AvatarSettings], elsewhere: frozenset[str], capsys: pytest.CaptureFixture[str]
) -> None:
    text = help_text(command.split(), capsys)
    fields = [field for field in settings_fields(settings) if field.key not in elsewhere]
    assert len(fields) >= 10
    for field in fields:
        assert field.info.description, f"{settings.__name__}.{field.key} has no description"
        described = "".join(field.info.description.split())
        assert f"{field.flag}" in text, field.flag
        assert described in text, field.key
        shown = default_text(field.default)
        if shown and not field.flag.startswith("--no-"):
            assert f"{described}(default{''.join(shown.split())})" in text, field.key


def test_backend_settings_are_nested_under_their_flat_names() -> None:
    settings = RemoteSettings.load(
        {
            "llm_url": "http://vllm:8000/v1",
            "fish_url": "http://fish:8080",
            "musetalk_models": "/m",
            "face_device": "cpu",
        }
    )
    assert settings.openai.url == "http://vllm:8000/v1"
    assert settings.fish.url == "http://fish:8080"
    assert (settings.musetalk.models, settings.musetalk.device) == (Path("/m"), "cpu")
    assert "llm_url" not in RemoteSettings.model_fields  # one home per setting: the backend's own model


def test_a_nested_backend_setting_takes_flag_over_env_over_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "avatar.toml"
    config.write_text('fish_url = "http://top:1"\n[remote]\nfish_url = "http://config:2"\nface_device = "cpu"\n')
    from_config = load_settings(RemoteSettings, parse(["remote", "--config", str(config)]), "remote")
    assert from_config is not None
    assert (from_config.fish.url, from_config.musetalk.device) == ("http://config:2", "cpu")

    monkeypatch.setenv("AVATAR_FISH_URL", "http://env:3")
    from_env = load_settings(RemoteSettings, parse(["remote", "--config", str(config)]), "remote")
    assert from_env is not None
    assert (from_env.fish.url, from_env.musetalk.device) == ("http://env:3", "cpu")  # the rest of the group stays

    words = ["remote", "--config", str(config), "--fish-url", "http://flag:4"]
    from_flag = load_settings(RemoteSettings, parse(words), "remote")
    assert from_flag is not None
    assert (from_flag.fish.url, from_flag.musetalk.device) == ("http://flag:4", "cpu")


def test_a_renamed_key_reaches_its_backend_by_flag_env_and_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = tmp_path / "voice.wav"
    config = tmp_path / "avatar.toml"
    config.write_text(f'[remote]\nvoice_reference = "{clip}"\n')
    by_config = load_settings(SpeakingSettings, parse(["say", "hi", "--config", str(config)]), "remote")
    assert by_config is not None and by_config.fish.reference == clip
    monkeypatch.setenv("AVATAR_VOICE_REFERENCE_TEXT", "Hello there.")
    by_env = load_settings(SpeakingSettings, parse(["say", "hi"]), "remote")
    assert by_env is not None and by_env.fish.reference_text == "Hello there."
    by_flag = load_settings(SpeakingSettings, parse(["say", "hi", "--voice-reference", str(clip)]), "remote")
    assert by_flag is not None and by_flag.fish.reference == clip


def test_the_box_switch_for_a_sidecar_is_no_backend_settings_for_the_avatar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVATAR_FISH", "false")  # the box's own switch, inherited by the `avatar remote` it starts
    assert BoxSettings.load({"token": "t"}).fish is False
    assert RemoteSettings.load().fish.url == "http://127.0.0.1:8080"


@pytest.mark.parametrize(
    ("words", "key", "value"),
    [
        (["local", "--half-duplex"], "half_duplex", True),
        (["box", "--no-fetch-models"], "fetch_models", False),
        (["signaling", "--accept-shared-token"], "accept_shared_token", True),
        (["demo", "--no-browser"], "open_browser", False),
        (["remote", "--no-fold-system-prompt"], "fold_system_prompt", False),
        (["remote", "--name", "Ann", "--name", "Annie"], "names", ["Ann", "Annie"]),
        (["remote", "--lookahead", "0.5"], "lookahead_s", 0.5),
        (["remote", "--musetalk-models", "/m"], "musetalk_models", Path("/m")),
    ],
)
def test_a_flag_sets_its_field_and_an_absent_flag_sets_nothing(words: list[str], key: str, value: object) -> None:
    assert getattr(parse(words), key) == value
    assert getattr(parse(words[:1]), key) is None  # so the environment and the config file still count


def test_no_help_string_writes_a_default_by_hand() -> None:
    hand_written = [
        f"{path.relative_to(AVATAR_PACKAGE.parent)}:{number}"
        for path in sorted(AVATAR_PACKAGE.rglob("*.py"))
        if path.name != "help_format.py"  # the one place that writes "(default X)"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "(default" in line
    ]
    assert hand_written == []
    described = [
        f"{settings.__name__}.{field.key}"
        for _, settings, _ in COMMANDS
        for field in settings_fields(settings)
        if "(default" in (field.info.description or "")
    ]
    assert described == []


def test_a_bad_backend_setting_is_named_as_the_user_wrote_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "avatar.toml"
    config.write_text("[remote]\nfish_url = 5\n")
    assert load_settings(RemoteSettings, parse(["remote", "--config", str(config)]), "remote") is None
    assert "invalid settings: fish_url: " in capsys.readouterr().err


def test_the_listening_settings_nest_whispers_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "avatar.toml"
    config.write_text('[local]\nlanguage = "auto"\nasr_device = "cuda"\n')
    monkeypatch.setenv("AVATAR_ASR_BEAM_SIZE", "2")
    words = ["transcribe", "talk.wav", "--asr-model", "base", "--config", str(config)]
    settings = load_settings(ListeningSettings, parse(words), "local")
    assert settings is not None
    assert settings.asr == WhisperSettings(model="base", device="cuda", beam_size=2, language=None)  # auto: detect
