"""Settings of ``avatar box``: the GPU box's one process that runs signaling, sidecars and the avatar peer."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr

from signaling.settings import SignalingSettings

DEFAULT_LLM = "INSAIT-Institute/MamayLM-Gemma-2-9B-IT-v0.1"


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() else None


class BoxSettings(SignalingSettings):
    """Everything the container's entrypoint decides; the defaults fit one 24 GB RTX 4090 (docs/deploy.md)."""

    host: str = Field("0.0.0.0", description="signaling bind address (needs AVATAR_TOKEN)")
    port: int = Field(8765, ge=0, le=65535, description="signaling port")
    room: str = Field("demo", description="room the avatar joins", json_schema_extra={"flag": False})
    rooms: list[str] = Field(
        default_factory=list,
        description="room the avatar joins, repeatable: one clone per room, sharing the models (unset: the room "
        "setting, AVATAR_ROOM)",
        json_schema_extra={"flag": "--room", "metavar": "ROOM"},
    )
    models_dir: Path = Field(Path("/models"), description="models volume")
    fetch_models: bool = Field(True, description="fetch MuseTalk's missing model files into --models-dir at start")
    # vLLM (OpenAI-compatible server)
    vllm: bool = Field(True, description="run the vLLM sidecar")
    vllm_command: str = Field("vllm", description="the vLLM executable")
    llm_model: str = Field(DEFAULT_LLM, description="model vLLM serves")
    llm_quantization: str | None = Field(
        "bitsandbytes", description="vLLM --quantization (4-bit in flight; none for a pre-quantized checkpoint)"
    )
    llm_max_model_len: int = Field(4096, ge=512, description="vLLM --max-model-len")
    llm_gpu_memory_utilization: float = Field(
        0.42,
        gt=0.05,
        le=0.95,
        description="vLLM's share of the GPU's memory (its start-up check wants this much free; with a KV cache "
        "budget it sizes nothing else from it)",
    )
    # 2 GiB holds 6,241 tokens of Gemma 2 9B (336 KiB each), one 4096-token conversation and slack
    llm_kv_cache_bytes: int = Field(
        2 * 1024**3,
        ge=64 * 1024**2,
        description="vLLM --kv-cache-memory-bytes: the KV cache it reserves instead of measuring what is free "
        "beside the other sidecars",
    )
    vllm_port: int = Field(8000, ge=1, le=65535, description="vLLM's port on 127.0.0.1")
    vllm_extra_args: list[str] = Field(
        default_factory=list, description="more vllm serve arguments", json_schema_extra={"flag": False}
    )
    # Fish Speech 1.5 API server (its own virtual environment)
    fish: bool = Field(True, description="run the Fish Speech sidecar")
    fish_dir: Path = Field(Path("/opt/fish-speech"), description="Fish Speech's checkout")
    fish_python: Path = Field(Path("/opt/fish-speech/.venv/bin/python"), description="Fish Speech's Python")
    fish_checkpoint: Path = Field(Path("/models/fish-speech-1.5"), description="Fish Speech's model files")
    fish_port: int = Field(8081, ge=1, le=65535, description="Fish Speech's port on 127.0.0.1")
    fish_compile: bool = Field(True, description="let Fish Speech compile its model (slower start, faster speech)")
    # coturn
    turn: bool = Field(True, description="run coturn")
    turn_command: str = Field("turnserver", description="the coturn executable")
    turn_port: int = Field(3478, ge=1, le=65535, description="coturn's listening port")
    turn_min_port: int = Field(49160, ge=1024, le=65535, description="lowest relay port coturn hands out")
    turn_max_port: int = Field(49200, ge=1024, le=65535, description="highest relay port coturn hands out")
    public_ip: str | None = Field(
        default_factory=lambda: os.environ.get("PUBLIC_IPADDR") or None,
        description="the box's public address (unset: PUBLIC_IPADDR, set by Vast.ai)",
    )
    # Vast.ai maps container ports to random public ones and says which in VAST_TCP_PORT_<n> / VAST_UDP_PORT_<n>
    turn_public_tcp_port: int | None = Field(
        default_factory=lambda: _env_int("VAST_TCP_PORT_3478"),
        description="public port mapped to coturn's TCP port (unset: VAST_TCP_PORT_3478)",
    )
    turn_public_udp_port: int | None = Field(
        default_factory=lambda: _env_int("VAST_UDP_PORT_3478"),
        description="public port mapped to coturn's UDP port (unset: VAST_UDP_PORT_3478)",
    )
    signaling_public_port: int | None = Field(
        default_factory=lambda: _env_int("VAST_TCP_PORT_8765"),
        description="public port mapped to the signaling port (unset: VAST_TCP_PORT_8765)",
    )
    remote_args: list[str] = Field(
        default_factory=lambda: ["--llm", "openai", "--tts", "fish", "--face", "musetalk"],
        description="the avatar peer's (avatar remote's) arguments",
        json_schema_extra={"flag": False},
    )
    health_timeout_s: float = Field(
        1200.0,
        gt=0,
        description="seconds each sidecar may take to load (the first start compiles and loads 9B weights)",
        json_schema_extra={"flag": "--health-timeout"},
    )
    restart_backoff_s: float = Field(3.0, ge=0, description="seconds before a crashed sidecar is restarted")
    state_dir: Path = Field(Path("/tmp/avatar-box"), description="where the box writes configs and logs")
    turn_secret: SecretStr | None = Field(
        None, description="coturn static-auth-secret (unset: one is generated for this run)"
    )

    def room_names(self) -> list[str]:
        """The rooms the box's avatar serves, each with its own clone."""
        return list(self.rooms) or [self.room]
