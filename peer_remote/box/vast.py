"""``avatar deploy vast``: search offers, create the box, wait until healthy, print the laptop's command.

Talks to Vast.ai through the ``vastai`` SDK. The API key comes from the SDK's own places (VAST_API_KEY or the
vastai config file written by ``vastai set api-key``), never from this repository; the signaling token comes
from AVATAR_TOKEN and travels only in the instance's environment.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

LABEL = "avatar-box"
SIGNALING_PORT = 8765
TURN_PORT = 3478


class DeployError(RuntimeError):
    """Vast.ai refused, the instance never came up, or the box never got healthy."""


@dataclass
class OfferFilter:
    """Sane defaults for one RTX 4090 that can carry a video call."""

    gpu_name: str = "RTX_4090"
    min_reliability: float = 0.98
    min_direct_ports: int = 4
    min_inet_down_mbps: float = 200
    min_inet_up_mbps: float = 100
    min_disk_gb: float = 80
    max_dollars_per_hour: float = 1.0
    min_cuda: float = 12.8  # every torch on the box is a CUDA 12.8 build (docs/deploy.md, the driver floor)

    def query(self) -> str:
        return " ".join(
            [
                f"gpu_name={self.gpu_name}",
                "num_gpus=1",
                f"reliability>={self.min_reliability}",
                f"direct_port_count>={self.min_direct_ports}",
                f"inet_down>={self.min_inet_down_mbps}",
                f"inet_up>={self.min_inet_up_mbps}",
                f"disk_space>={self.min_disk_gb}",
                f"dph_total<={self.max_dollars_per_hour}",
                f"cuda_max_good>={self.min_cuda}",
            ]
        )


@dataclass
class BoxRequest:
    image: str
    token: str
    disk_gb: float = 80
    room: str = "demo"
    extra_env: dict[str, str] = field(default_factory=dict)  # e.g. HF_TOKEN for the gated Gemma licence

    def env(self) -> dict[str, str]:
        ports = {f"-p {SIGNALING_PORT}:{SIGNALING_PORT}": "1", f"-p {TURN_PORT}:{TURN_PORT}": "1"}
        ports[f"-p {TURN_PORT}:{TURN_PORT}/udp"] = "1"
        return {**ports, "AVATAR_TOKEN": self.token, "AVATAR_ROOM": self.room, **self.extra_env}


@dataclass(frozen=True)
class Endpoint:
    """Where the laptop reaches the box."""

    ip: str
    signaling_port: int
    turn_tcp_port: int | None
    turn_udp_port: int | None

    @property
    def signaling_url(self) -> str:
        return f"http://{self.ip}:{self.signaling_port}"


def mapped_port(instance: dict[str, Any], port: int, proto: str = "tcp") -> int | None:
    """The public port Vast mapped to a container port (Docker's ``ports`` layout)."""
    bindings = (instance.get("ports") or {}).get(f"{port}/{proto}") or []
    for binding in bindings:
        host_port = str(binding.get("HostPort", ""))
        if host_port.isdigit():
            return int(host_port)
    return None


def endpoint_of(instance: dict[str, Any]) -> Endpoint | None:
    ip = instance.get("public_ipaddr")
    signaling = mapped_port(instance, SIGNALING_PORT)
    if not ip or signaling is None:
        return None
    return Endpoint(ip.strip(), signaling, mapped_port(instance, TURN_PORT), mapped_port(instance, TURN_PORT, "udp"))


def read_healthz(url: str, timeout_s: float = 5.0) -> dict[str, Any] | None:
    """The box's /healthz JSON (also on 503 while starting), or None if unreachable."""
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=timeout_s) as response:
            body: dict[str, Any] = json.loads(response.read())
            return body
    except urllib.error.HTTPError as exc:
        try:
            parsed: dict[str, Any] = json.loads(exc.read())
            return parsed
        except ValueError:
            return None
    except (OSError, ValueError):
        return None


def component_summary(health: dict[str, Any]) -> str:
    parts = [f"{name} {c.get('state')}" for name, c in (health.get("components") or {}).items()]
    return f"{health.get('status')}: " + (", ".join(parts) or "no components")


class VastDeployer:
    """The four operations, over a ``vastai.VastAI`` client (``server_url`` lets tests use a fake API)."""

    def __init__(self, server_url: str | None = None, client: Any = None) -> None:
        if client is None:
            from vastai import VastAI

            try:
                client = VastAI(server_url=server_url, raw=True, quiet=True)
            except RuntimeError as exc:
                raise DeployError("no Vast.ai API key: run `vastai set api-key YOUR_KEY` or set VAST_API_KEY") from exc
        self.client = client

    def search(self, offer_filter: OfferFilter, limit: int = 5) -> list[dict[str, Any]]:
        offers = self.client.search_offers(query=offer_filter.query(), order="dph_total", limit=limit)
        if not isinstance(offers, list):
            raise DeployError(f"unexpected answer to the offer search: {offers!r:.200}")
        return offers

    def create(self, offer_id: int, request: BoxRequest) -> int:
        answer = self.client.create_instance(
            id=offer_id,
            image=request.image,
            disk=request.disk_gb,
            env=request.env(),
            label=LABEL,
            runtype="args",
            cancel_unavail=True,
        )
        if not isinstance(answer, dict) or not answer.get("success") or "new_contract" not in answer:
            raise DeployError(f"Vast.ai did not create the instance: {answer!r:.300}")
        return int(answer["new_contract"])

    def instance(self, instance_id: int) -> dict[str, Any]:
        instance = self.client.show_instance(id=instance_id)
        if not instance:
            raise DeployError(f"no instance {instance_id} in this account")
        return dict(instance)

    def ours(self) -> list[dict[str, Any]]:
        return [i for i in self.client.show_instances() if i.get("label") == LABEL]

    def destroy(self, instance_id: int) -> None:
        answer = self.client.destroy_instance(id=instance_id)
        if isinstance(answer, dict) and answer.get("success") is False:
            raise DeployError(f"Vast.ai did not destroy instance {instance_id}: {answer.get('msg', answer)}")

    def wait_healthy(
        self,
        instance_id: int,
        timeout_s: float,
        poll_s: float = 10.0,
        report: Callable[[str], None] = print,
        clock: Callable[[], float] = time.monotonic,
    ) -> Endpoint:
        """Wait for the container to run with mapped ports, then for /healthz to say ok."""
        deadline = clock() + timeout_s
        last = ""
        while True:
            instance = self.instance(instance_id)
            status = instance.get("actual_status") or "unknown"
            endpoint = endpoint_of(instance) if status == "running" else None
            if status in ("exited", "offline") or instance.get("intended_status") == "stopped":
                raise DeployError(f"instance {instance_id} is {status}: {instance.get('status_msg', '')}".strip())
            if endpoint is None:
                line = f"instance {instance_id}: {status} {instance.get('status_msg') or ''}".strip()
            else:
                health = read_healthz(endpoint.signaling_url)
                if health is not None and health.get("status") == "ok":
                    report(f"box healthy at {endpoint.signaling_url}: {component_summary(health)}")
                    return endpoint
                line = f"box at {endpoint.signaling_url}: " + (
                    component_summary(health) if health else "signaling not answering yet"
                )
            if line != last:
                report(line)
                last = line
            if clock() >= deadline:
                raise DeployError(
                    f"instance {instance_id} not healthy after {timeout_s:.0f} s (last: {line}); "
                    f"inspect it with `avatar deploy vast status {instance_id}` or destroy it"
                )
            time.sleep(poll_s)
