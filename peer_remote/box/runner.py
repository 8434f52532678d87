"""``avatar box``: the container's entrypoint.

Order: fetch missing model files, start signaling (its /healthz reports every component from the first second),
start coturn and vLLM and wait for vLLM's health, then Fish Speech and wait for its health, then ``avatar remote``
(MuseTalk): vLLM loads alone on the card, so nothing else allocates while it loads its weights and KV cache.
A crashed sidecar is restarted with a backoff and shows as ``degraded`` with its restart count on /healthz.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from peer_remote.box.model_fetch import FISH_SPEECH_FILES, MUSETALK_FILES, ModelFile, fetch_models
from peer_remote.box.plan import advertised_turn_urls, box_secrets, laptop_command, remote_spec, sidecar_specs
from peer_remote.box.settings import BoxSettings
from peer_remote.box.sidecar import Sidecar, SidecarError, SidecarGroup
from signaling.messages import Role
from signaling.server import SignalingService

logger = logging.getLogger(__name__)


def required_files(settings: BoxSettings) -> tuple[ModelFile, ...]:
    files: tuple[ModelFile, ...] = ()
    if "musetalk" in settings.remote_args:
        files += MUSETALK_FILES
    if settings.fish:
        files += FISH_SPEECH_FILES
    return files


def public_signaling_url(settings: BoxSettings, bound_port: int) -> str:
    if settings.public_url:
        return settings.public_url
    host = settings.public_ip or "127.0.0.1"
    return f"http://{host}:{settings.signaling_public_port or bound_port}"


class Box:
    """Signaling + sidecars + the avatar peer, supervised; ``components()`` feeds /healthz."""

    def __init__(self, settings: BoxSettings) -> None:
        self.settings = settings
        self.token, self.turn_secret = box_secrets(settings)
        self.sidecars = SidecarGroup(sidecar_specs(settings, self.turn_secret))
        self.remote: Sidecar | None = None
        self.ready = asyncio.Event()

    def components(self) -> dict[str, dict[str, Any]]:
        status = self.sidecars.status()
        remote = self.remote.status() if self.remote else {"state": "stopped"}
        if remote["state"] == "running" and not self.ready.is_set():
            remote["state"] = "starting"  # loading its models, not yet in the room
        status["avatar-remote"] = remote
        return status

    def signaling_settings(self) -> BoxSettings:
        ice = list(self.settings.ice_servers)
        if self.settings.turn:
            ice += advertised_turn_urls(self.settings)
        return self.settings.model_copy(update={"ice_servers": ice})

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.settings
        files = required_files(settings)
        if settings.fetch_models and files:
            await asyncio.to_thread(fetch_models, settings.models_dir, files)
        async with SignalingService(self.signaling_settings(), self.token) as service:
            service.server.components = self.components
            try:
                await self._start_all(service.port)
                await self._wait_remote_joined(service)
                public = public_signaling_url(settings, service.port)
                self.ready.set()
                print(f"avatar box ready; signaling at {public}", flush=True)
                for room in settings.room_names():
                    print(f"on the laptop: {laptop_command(public, room)}", flush=True)
                await stop.wait()
            finally:
                if self.remote:
                    await self.remote.stop()
                await self.sidecars.stop()

    async def _wait_remote_joined(self, service: SignalingService) -> None:
        """The avatar peer loads its models, then joins every room; bounded by the health timeout."""
        for room in self.settings.room_names():
            try:
                await asyncio.wait_for(service.server.wait_for_peer(Role.REMOTE, room), self.settings.health_timeout_s)
            except TimeoutError as exc:
                tail = self.remote.log_tail() if self.remote else ""
                raise SidecarError(f"avatar-remote did not join room {room!r}; last output:\n{tail}") from exc

    async def _start_all(self, signaling_port: int) -> None:
        logger.info("starting %s", ", ".join(s.spec.name for s in self.sidecars.sidecars) or "no sidecars")
        await self.sidecars.start()
        self.remote = Sidecar(remote_spec(self.settings, f"http://127.0.0.1:{signaling_port}", self.token))
        await self.remote.start()
