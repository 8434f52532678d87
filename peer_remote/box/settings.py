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

    host: str = "0.0.0.0"
    port: int = Field(8765, ge=0, le=65535)
    room: str = "demo"
    rooms: list[str] = Field(default_factory=list)  # several clones, one per room (default: just ``room``)
    models_dir: Path = Path("/models")
    fetch_models: bool = True  # fetch MuseTalk's files into models_dir at first start
    # vLLM (OpenAI-compatible server)
    vllm: bool = True
    vllm_command: str = "vllm"
    llm_model: str = DEFAULT_LLM
    llm_quantization: str | None = "bitsandbytes"  # 4-bit in-flight; None for a pre-quantized checkpoint
    llm_max_model_len: int = Field(4096, ge=512)
    # vLLM's start-up check wants this share of the card free; with a KV budget it sizes nothing else from it
    llm_gpu_memory_utilization: float = Field(0.42, gt=0.05, le=0.95)
    # the KV cache vLLM reserves (--kv-cache-memory-bytes) instead of measuring what is free beside the other
    # sidecars: 2 GiB holds 6,241 tokens of Gemma 2 9B (336 KiB each), one 4096-token conversation and slack
    llm_kv_cache_bytes: int = Field(2 * 1024**3, ge=64 * 1024**2)
    vllm_port: int = Field(8000, ge=1, le=65535)
    vllm_extra_args: list[str] = Field(default_factory=list)
    # Fish Speech 1.5 API server (its own virtual environment)
    fish: bool = True
    fish_dir: Path = Path("/opt/fish-speech")
    fish_python: Path = Path("/opt/fish-speech/.venv/bin/python")
    fish_checkpoint: Path = Path("/models/fish-speech-1.5")
    fish_port: int = Field(8081, ge=1, le=65535)
    fish_compile: bool = True
    # coturn
    turn: bool = True
    turn_command: str = "turnserver"
    turn_port: int = Field(3478, ge=1, le=65535)
    turn_min_port: int = Field(49160, ge=1024, le=65535)
    turn_max_port: int = Field(49200, ge=1024, le=65535)
    public_ip: str | None = Field(default_factory=lambda: os.environ.get("PUBLIC_IPADDR") or None)
    # Vast.ai maps container ports to random public ones and says which in VAST_TCP_PORT_<n> / VAST_UDP_PORT_<n>
    turn_public_tcp_port: int | None = Field(default_factory=lambda: _env_int("VAST_TCP_PORT_3478"))
    turn_public_udp_port: int | None = Field(default_factory=lambda: _env_int("VAST_UDP_PORT_3478"))
    signaling_public_port: int | None = Field(default_factory=lambda: _env_int("VAST_TCP_PORT_8765"))
    # the avatar peer (``avatar remote``) and its backends
    remote_args: list[str] = Field(default_factory=lambda: ["--llm", "openai", "--tts", "fish", "--face", "musetalk"])
    health_timeout_s: float = Field(1200.0, gt=0)  # first start compiles and loads 9B weights
    restart_backoff_s: float = Field(3.0, ge=0)
    state_dir: Path = Path("/tmp/avatar-box")
    turn_secret: SecretStr | None = None

    def room_names(self) -> list[str]:
        """The rooms the box's avatar serves, each with its own clone."""
        return list(self.rooms) or [self.room]
