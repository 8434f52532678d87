"""What the box runs: command lines and config files generated from :class:`BoxSettings`."""

from __future__ import annotations

import dataclasses
import secrets
import shlex
import sys
from pathlib import Path

from peer_remote.box.settings import BoxSettings
from peer_remote.box.sidecar import SidecarSpec
from peer_remote.tts import fish

FISH_DECODER = "firefly-gan-vq-fsq-8x1024-21hz-generator.pth"


def vllm_spec(settings: BoxSettings) -> SidecarSpec:
    argv = [
        settings.vllm_command,
        "serve",
        settings.llm_model,
        "--served-model-name",
        settings.llm_model,
        "--host",
        "127.0.0.1",
        "--port",
        str(settings.vllm_port),
        "--max-model-len",
        str(settings.llm_max_model_len),
        "--gpu-memory-utilization",
        f"{settings.llm_gpu_memory_utilization:.2f}",
        "--kv-cache-memory-bytes",  # a fixed KV budget: not sized from memory other sidecars take meanwhile
        str(settings.llm_kv_cache_bytes),
        "--max-num-seqs",
        "4",  # one conversation: a small batch keeps the KV cache and CUDA graphs small
    ]
    if settings.llm_quantization:
        argv += ["--quantization", settings.llm_quantization]
    argv += settings.vllm_extra_args
    return SidecarSpec(
        name="vllm",
        argv=tuple(argv),
        health_url=f"http://127.0.0.1:{settings.vllm_port}/health",
        env={"HF_HOME": str(settings.models_dir / "huggingface")},
        health_timeout_s=settings.health_timeout_s,
        restart_backoff_s=settings.restart_backoff_s,
    )


def fish_spec(settings: BoxSettings) -> SidecarSpec:
    checkpoint = settings.fish_checkpoint
    argv = [
        str(settings.fish_python),
        "-m",
        "tools.api_server",
        "--listen",
        f"127.0.0.1:{settings.fish_port}",
        "--llama-checkpoint-path",
        str(checkpoint),
        "--decoder-checkpoint-path",
        str(checkpoint / FISH_DECODER),
        "--decoder-config-name",
        "firefly_gan_vq",
    ]
    if settings.fish_compile:
        argv.append("--compile")
    return SidecarSpec(
        name="fish-speech",
        argv=tuple(argv),
        health_url=f"http://127.0.0.1:{settings.fish_port}{fish.HEALTH_PATH}",
        health_method=fish.HEALTH_METHOD,
        cwd=str(settings.fish_dir),
        health_timeout_s=settings.health_timeout_s,
        restart_backoff_s=settings.restart_backoff_s,
    )


def coturn_config(
    secret: str,
    state_dir: Path,
    listening_ips: list[str],
    relay_ip: str | None,
    port: int,
    min_port: int,
    max_port: int,
    external_ip: str | None = None,
) -> str:
    """A coturn config with TURN REST credentials (``use-auth-secret``): only short-lived derived ones work."""
    lines = [f"listening-ip={ip}" for ip in listening_ips]
    lines += [
        f"listening-port={port}",
        f"min-port={min_port}",
        f"max-port={max_port}",
        "use-auth-secret",
        f"static-auth-secret={secret}",
        "realm=avatar",
        "fingerprint",
        "no-tls",
        "no-dtls",
        "no-cli",
        "no-multicast-peers",
        # WebRTC relays UDP only; TCP allocations (RFC 6062) would let any holder of credentials (every viewer)
        # open TCP connections from the box to whatever it can reach that is not loopback (coturn's default deny)
        "no-tcp-relay",
        "verbose",  # one line per allocation: shows in turn.log whether calls go through the relay
        "simple-log",
        f"log-file={state_dir / 'turn.log'}",
        f"userdb={state_dir / 'turndb'}",
        f"pidfile={state_dir / 'turn.pid'}",
    ]
    if relay_ip:
        lines.append(f"relay-ip={relay_ip}")
    if external_ip:
        lines.append(f"external-ip={external_ip}")
    return "\n".join(lines) + "\n"


def coturn_spec(settings: BoxSettings, secret: str) -> SidecarSpec:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    config = settings.state_dir / "turnserver.conf"
    config.write_text(
        coturn_config(
            secret,
            settings.state_dir,
            listening_ips=["0.0.0.0"],
            relay_ip=None,
            port=settings.turn_port,
            min_port=settings.turn_min_port,
            max_port=settings.turn_max_port,
            external_ip=settings.public_ip,
        ),
        encoding="utf-8",
    )
    config.chmod(0o600)  # it holds the TURN secret
    return SidecarSpec(
        name="coturn",
        argv=(settings.turn_command, "-c", str(config)),
        restart_backoff_s=settings.restart_backoff_s,
    )


def advertised_turn_urls(settings: BoxSettings) -> list[str]:
    """TURN URLs for the laptop: the public IP with Vast's mapped ports (TCP always, UDP where mapped)."""
    host = settings.public_ip or "127.0.0.1"
    urls = [f"turn:{host}:{settings.turn_public_tcp_port or settings.turn_port}?transport=tcp"]
    if settings.turn_public_udp_port:
        urls.insert(0, f"turn:{host}:{settings.turn_public_udp_port}?transport=udp")
    return urls


def laptop_command(signaling_url: str, room: str) -> str:
    """What the person runs on the laptop: join the box's room and listen to the meeting (what the computer
    plays). The token comes from AVATAR_TOKEN there and is never printed."""
    return shlex.join(["avatar", "local", "--signaling", signaling_url, "--room", room, "--input", "loopback"])


def remote_spec(settings: BoxSettings, signaling_url: str, token: str) -> SidecarSpec:
    """``avatar remote`` against the box's own signaling and sidecars (the token travels in its environment)."""
    argv = [
        sys.executable,
        "-m",
        "avatar",
        "remote",
        "--signaling",
        signaling_url,
        *(argument for room in settings.room_names() for argument in ("--room", room)),
        "--llm-url",
        f"http://127.0.0.1:{settings.vllm_port}/v1",
        "--llm-model",
        settings.llm_model,
        "--fish-url",
        f"http://127.0.0.1:{settings.fish_port}",
        "--musetalk-models",
        str(settings.models_dir),
        *settings.remote_args,
    ]
    return SidecarSpec(
        name="avatar-remote",
        argv=tuple(argv),
        env={"AVATAR_TOKEN": token},
        restart_backoff_s=settings.restart_backoff_s,
    )


def box_secrets(settings: BoxSettings) -> tuple[str, str]:
    """(signaling token, TURN secret): configured ones, or a TURN secret generated for this run."""
    if settings.token is None or not settings.token.get_secret_value():
        raise ValueError(
            "the box needs AVATAR_TOKEN (the laptop presents the same token); "
            'create one with: python -c "import secrets; print(secrets.token_urlsafe(24))"'
        )
    turn = settings.turn_secret.get_secret_value() if settings.turn_secret else secrets.token_urlsafe(24)
    return settings.token.get_secret_value(), turn


def sidecar_specs(settings: BoxSettings, turn_secret: str) -> list[SidecarSpec]:
    specs: list[SidecarSpec] = []
    if settings.turn:
        specs.append(coturn_spec(settings, turn_secret))
    if settings.vllm:
        specs.append(vllm_spec(settings))
    if settings.fish:
        fish = fish_spec(settings)
        if settings.vllm:  # vLLM loads alone on the card first (docs/deploy.md, the VRAM plan)
            fish = dataclasses.replace(fish, starts_after=("vllm",))
        specs.append(fish)
    return specs
