"""Running the signaling server: token policy, binding, join URL, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from types import TracebackType
from urllib.parse import urlencode

from aiohttp import web

from signaling.app import SERVER_KEY, SignalingServer, create_app
from signaling.auth import generate_token
from signaling.settings import SignalingSettings, is_loopback_host
from signaling.tokens import issue_token

logger = logging.getLogger(__name__)


class InsecureBindError(RuntimeError):
    """Refusal to serve an open (token-less) server on a non-loopback address."""


def resolve_token(settings: SignalingSettings) -> tuple[str, bool]:
    """The configured token, or a generated one on loopback; ``(token, generated)``."""
    if settings.token is not None and settings.token.get_secret_value():
        return settings.token.get_secret_value(), False
    if not is_loopback_host(settings.host):
        raise InsecureBindError(
            f"refusing to listen on {settings.host} without a token: anyone who can reach it could join. "
            'Set AVATAR_TOKEN or pass --token (e.g. --token "$(openssl rand -base64 24)"), '
            "or bind to 127.0.0.1."
        )
    return generate_token(), True


def join_url(base_url: str, room: str, token: str, **extra: str) -> str:
    """The preview page URL with room and token filled in."""
    return f"{base_url.rstrip('/')}/?{urlencode({'room': room, 'token': token, **extra})}"


class SignalingService:
    """A started signaling server (async context manager); ``port`` is the bound port."""

    def __init__(self, settings: SignalingSettings, token: str) -> None:
        self.settings = settings
        self.token = token
        self.app = create_app(settings, token)
        self._runner = web.AppRunner(self.app, handle_signals=False, shutdown_timeout=5.0, access_log=None)
        self.port = settings.port

    @property
    def server(self) -> SignalingServer:
        return self.app[SERVER_KEY]

    @property
    def base_url(self) -> str:
        host = self.settings.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        return self.settings.public_url or f"http://{host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http", "ws", 1) + "/ws"

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            self.port = server.sockets[0].getsockname()[1]
        logger.info("signaling listening on %s:%d", self.settings.host, self.port)

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def __aenter__(self) -> SignalingService:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


def install_stop_signals(stop: asyncio.Event) -> None:
    """Set ``stop`` on SIGINT/SIGTERM (where the platform lets asyncio handle signals)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # on Windows asyncio cannot handle signals: KeyboardInterrupt ends asyncio.run instead
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def serve_until_stopped(settings: SignalingSettings, token: str, announce: bool) -> None:
    """Serve until SIGINT/SIGTERM, then say bye to every peer and close."""
    stop = asyncio.Event()
    install_stop_signals(stop)
    async with SignalingService(settings, token) as service:
        if announce:
            print(f"signaling server on {service.base_url}", flush=True)
            print(f"join URL: {join_url(service.base_url, 'demo', token)}", flush=True)
            print(f"peers connect to: {service.ws_url}?room=demo&role=ROLE (Authorization: Bearer <token>)", flush=True)
        else:
            print(f"signaling server on {service.base_url} (token from AVATAR_TOKEN/--token)", flush=True)
            viewer = issue_token(token, "demo", "viewer", 12 * 3600)
            print(
                f"preview page for room demo (viewer, 12 h): {join_url(service.base_url, 'demo', viewer)}", flush=True
            )
        await stop.wait()
        logger.info("stop signal received")
