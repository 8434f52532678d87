"""Helpers shared by the subcommands: the ``--config`` flag and settings errors."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from media.settings import PeerSettings
from signaling.settings import AvatarSettings, ConfigFileError

SettingsT = TypeVar("SettingsT", bound=AvatarSettings)


def add_config_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, metavar="FILE", help="TOML settings file (top-level keys and a [section] per command)"
    )


def load_settings(
    cls: type[SettingsT], args: argparse.Namespace, section: str, fields: dict[str, Any]
) -> SettingsT | None:
    """Load settings or print a clear error to stderr and return None."""
    try:
        return cls.load(fields, getattr(args, "config", None), section)
    except ConfigFileError as exc:
        print(f"avatar: {exc}", file=sys.stderr)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        print(f"avatar: invalid settings: {problems}", file=sys.stderr)
    return None


def add_peer_arguments(parser: argparse.ArgumentParser, several_rooms: bool = False) -> None:
    """Flags every peer takes: signaling URL, room, token, ICE. ``several_rooms``: --room is repeatable (``rooms``)."""
    parser.add_argument("--signaling", metavar="URL", help="signaling server base URL (default http://127.0.0.1:8080)")
    if several_rooms:
        parser.add_argument(
            "--room",
            action="append",
            dest="rooms",
            metavar="ROOM",
            help="room to join (default demo); repeat it to serve several rooms, each with its own clone",
        )
    else:
        parser.add_argument("--room", help="room to join (default demo)")
    parser.add_argument("--token", help="signaling token (default: AVATAR_TOKEN)")
    parser.add_argument(
        "--ice-server",
        action="append",
        dest="ice_servers",
        metavar="URL",
        help="STUN/TURN server, repeatable: stun:HOST:PORT or turn://USER:PASS@HOST:PORT?transport=udp (default: none)",
    )
    parser.add_argument(
        "--ice-host",
        action="append",
        dest="ice_host_addresses",
        metavar="ADDR",
        help="gather ICE host candidates only on this address, repeatable (e.g. 127.0.0.1 for same-machine runs)",
    )
    add_config_flag(parser)


def token_problem(settings: PeerSettings, command: str) -> bool:
    """Print why a peer cannot start without a token; True if there is a problem."""
    try:
        settings.token_value()
    except ValueError as exc:
        print(f"avatar {command}: {exc}", file=sys.stderr)
        return True
    return False


PEER_FIELDS = ("signaling", "room", "token", "ice_servers", "ice_host_addresses")


def fields_of(args: argparse.Namespace, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(args, name, None) for name in names}


LISTENING_FIELDS = (
    "input",
    "vad_threshold",
    "min_speech_ms",
    "end_silence_ms",
    "turn_detector",
    "smart_turn_model",
    "early_asr_ms",
    "pre_roll_ms",
    "asr_model",
    "asr_device",
    "asr_compute_type",
    "asr_beam_size",
    "language",
    "half_duplex",
)


def add_listening_arguments(parser: argparse.ArgumentParser, with_input: bool = True) -> None:
    """Flags of the VAD + ASR path (``avatar local``, ``avatar transcribe``)."""
    if with_input:
        parser.add_argument(
            "--input", help="what to listen to: mic (default), mic:NAME|INDEX, loopback, an audio/video FILE, or none"
        )
    parser.add_argument("--vad-threshold", type=float, help="speech probability that starts speech (default 0.5)")
    parser.add_argument("--min-speech-ms", type=int, help="shortest speech that counts as a turn (default 250)")
    parser.add_argument("--end-silence-ms", type=int, help="silence that ends a turn (default 320)")
    parser.add_argument(
        "--turn-detector",
        choices=["silence", "smart-turn"],
        help="what ends a turn: silence (--end-silence-ms, the default) or smart-turn (Smart Turn v3 judges each "
        "200 ms pause: complete ends the turn, a pause mid-sentence waits up to 2 s)",
    )
    parser.add_argument(
        "--early-asr-ms",
        type=int,
        help="silence after which the turn so far is transcribed during the end-of-turn wait (default 100; 0: off)",
    )
    parser.add_argument(
        "--smart-turn-model",
        type=Path,
        metavar="ONNX",
        help="smart-turn-v3.2-cpu.onnx (default: the one inside an installed pipecat-ai)",
    )
    parser.add_argument("--pre-roll-ms", type=int, help="audio kept from before speech is detected (default 200)")
    parser.add_argument(
        "--asr-model", help="faster-whisper model: tiny.en (bundled, default), a model name, or a directory"
    )
    parser.add_argument("--asr-device", help="cpu (default) or cuda")
    parser.add_argument("--asr-compute-type", help="CTranslate2 compute type (default int8; int8_float16 on a GPU)")
    parser.add_argument("--asr-beam-size", type=int, help="beam size (default 5; 1 is faster, less accurate)")
    parser.add_argument("--language", help="spoken language: en (default), uk, ..., or auto")
    if with_input:
        parser.add_argument(
            "--half-duplex",
            action="store_true",
            default=None,
            help="ignore the input while the avatar speaks (echo guard)",
        )


SPEAKING_FIELDS = (
    "llm",
    "llm_gguf",
    "llm_url",
    "llm_model",
    "llm_api_key",
    "max_tokens",
    "temperature",
    "context_tokens",
    "persona",
    "persona_file",
    "fold_system_prompt",
    "tts",
    "piper_voice",
    "fish_url",
    "fish_api_key",
    "voice_reference",
    "voice_reference_text",
    "face",
    "face_image",
    "face_cache_dir",
    "musetalk_models",
    "face_device",
)


def add_speaking_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of the LLM -> TTS -> face path (``avatar remote``, ``say``, ``chat``)."""
    parser.add_argument(
        "--llm",
        choices=["embedded", "openai"],
        help="embedded llama.cpp (default) or an OpenAI-compatible server such as vLLM",
    )
    parser.add_argument(
        "--llm-gguf", type=Path, help="embedded: GGUF model file (default: the bundled SmolLM2-135M-Instruct)"
    )
    parser.add_argument("--llm-url", help="openai: server base URL (default http://127.0.0.1:8000/v1)")
    parser.add_argument("--llm-model", help="openai: model name (default MamayLM-Gemma-2-9B-IT)")
    parser.add_argument("--llm-api-key", help="openai: API key (or AVATAR_LLM_API_KEY)")
    parser.add_argument("--max-tokens", type=int, help="longest reply in tokens (default 96)")
    parser.add_argument("--temperature", type=float, help="sampling temperature (default 0.7)")
    parser.add_argument("--context-tokens", type=int, help="conversation memory budget in tokens (default 1024)")
    parser.add_argument("--persona", help="system prompt: who the person is and how they speak")
    parser.add_argument("--persona-file", type=Path, help="a text file with the system prompt")
    parser.add_argument(
        "--fold-system-prompt",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="put the persona into the first user turn (default: automatic for Gemma/MamayLM, which reject a system role)",
    )
    parser.add_argument(
        "--tts", choices=["piper", "fish"], help="piper with the bundled voice (default) or a Fish Speech server"
    )
    parser.add_argument("--piper-voice", type=Path, help="piper: an .onnx voice with its .onnx.json beside it")
    parser.add_argument("--fish-url", help="fish: Fish Speech API server (default http://127.0.0.1:8080)")
    parser.add_argument("--fish-api-key", help="fish: API key, if the server wants one")
    parser.add_argument(
        "--voice-reference", type=Path, help="fish: the person's reference clip (transcript in a .txt beside it)"
    )
    parser.add_argument("--voice-reference-text", help="fish: the reference clip's exact transcript")
    parser.add_argument(
        "--face", choices=["portrait", "musetalk"], help="face animator: portrait (default, CPU) or musetalk (GPU)"
    )
    parser.add_argument(
        "--musetalk-models", type=Path, help="musetalk: models directory (default /models, filled by container/)"
    )
    parser.add_argument("--face-device", help="musetalk: cuda (default, fp16) or cpu")
    parser.add_argument("--face-image", type=Path, help="the person's photo (default: the bundled astronaut portrait)")
    parser.add_argument(
        "--face-cache-dir", type=Path, help="where prepared faces are cached (default: the user cache dir)"
    )


DEVICE_FIELDS = ("camera", "camera_device", "camera_width", "camera_height", "camera_fps", "mirror", "mic_out")


def explicit_devices(args: argparse.Namespace) -> frozenset[str]:
    """Which sink devices the user named on the command line (those must work; defaults may be skipped)."""
    return frozenset(name for name in ("camera", "mic_out") if getattr(args, name, None) is not None)


def add_device_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the avatar goes: the virtual camera and the virtual microphone."""
    parser.add_argument(
        "--camera",
        choices=["virtual", "none"],
        help="feed a virtual webcam (default virtual; skipped with a hint if none is installed)",
    )
    parser.add_argument("--camera-device", help="virtual camera device (e.g. /dev/video10; default: the backend's own)")
    parser.add_argument(
        "--camera-width", type=int, help="virtual camera width (default 1280; the square avatar sits on a background)"
    )
    parser.add_argument("--camera-height", type=int, help="virtual camera height (default 720)")
    parser.add_argument("--camera-fps", type=int, help="virtual camera frame rate (default 25)")
    parser.add_argument("--mirror", action="store_true", default=None, help="mirror the virtual camera image")
    parser.add_argument(
        "--mic-out",
        help="virtual microphone output device, or none (default: 'CABLE Input (VB-Audio Virtual Cable)' on Windows, "
        "the avatar_mic null sink on Linux)",
    )


IN_CHARGE_FIELDS = ("profile", "control_port", "webcam", "person_mic", "session_log", "answer")  # InChargeSettings


def add_in_charge_arguments(parser: argparse.ArgumentParser) -> None:
    """The person stays in charge: profile sync, live control, the session log."""
    parser.add_argument("--profile", help="the person's profile (name or folder) to sync to the avatar")
    parser.add_argument(
        "--control-port",
        type=int,
        help="127.0.0.1 port of the control endpoint for hotkey tools (default 8766; 0: off). Every request "
        "needs 'Authorization: Bearer SECRET', SECRET being this run's secret from the file named at start "
        "(readable by you only; `avatar control ACTION` sends it for you)",
    )
    parser.add_argument("--webcam", type=int, help="real webcam index put on the virtual camera on take-over")
    parser.add_argument(
        "--person-mic",
        metavar="NAME|INDEX",
        help="your real microphone, put on the virtual microphone on take-over (default: the default input)",
    )
    parser.add_argument("--session-log", help="session log (JSONL) path, or none (default: under the user data dir)")
    parser.add_argument(
        "--answer",
        choices=["always", "addressed", "never"],
        help="when the clone answers: always, addressed (its name, a follow-up to its answer, or [a]/answer-this; "
        "default for avatar local) or never (listen only); avatar demo defaults to always",
    )


def write_json(path: Path | None, result: dict[str, Any]) -> None:
    """Write a result as JSON (when a path was given) and say where."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2))
        print(f"wrote {path}")
