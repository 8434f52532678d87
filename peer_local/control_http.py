"""The local control endpoint for hotkey tools: GET /control, POST /control/{take-over,hand-back,mute,unmute,skip}.

Bound to 127.0.0.1 only: whoever can reach it controls what the meeting sees, and every web page the person opens
can reach it. So every request must carry this run's secret as ``Authorization: Bearer <secret>`` (a cross-site
page cannot add that header without a CORS preflight, which is refused: no CORS headers are ever sent), must name
this endpoint in ``Host`` (a DNS-rebinding page names its own host) and must not come from another ``Origin``.
These checks run before anything else, so an unauthenticated caller learns nothing about the actions.
"""

from __future__ import annotations

import hmac
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from peer_local.control import ACTIONS, LiveControl
from peer_local.control_secret import generate_secret, remove_secret, write_secret
from signaling.auth import RefusalLog

logger = logging.getLogger(__name__)

CONTROL_KEY = web.AppKey("control", LiveControl)
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _refuse(status: int, message: str) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="avatar control"'} if status == 401 else None
    return web.json_response({"error": message}, status=status, headers=headers)


class RequestGuard:
    """Host, Origin and the bearer secret, checked in that order before any route runs."""

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode("ascii")
        self.port = 0  # set once bound
        self.refusals: Counter[int] = Counter()  # by status: 401 (secret), 403 (Host, Origin)
        self._log = RefusalLog(logger)

    def hosts(self) -> set[str]:
        return {f"{name}:{self.port}" for name in LOOPBACK_NAMES}

    def refusal(self, request: web.Request) -> web.Response | None:
        host = request.headers.get("Host", "").strip().lower()
        if host not in self.hosts():
            return _refuse(403, f"Host must be 127.0.0.1:{self.port} or localhost:{self.port}")
        origin = request.headers.get("Origin")
        if origin is not None and origin.strip().lower() not in {f"http://{h}" for h in self.hosts()}:
            return _refuse(403, "requests from web pages are not accepted")
        if request.headers.get("Sec-Fetch-Site", "none").lower() not in ("none", "same-origin"):
            return _refuse(403, "requests from web pages are not accepted")  # a browser without Origin support
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        candidate = presented.strip().encode("utf-8", "replace")
        if scheme.lower() != "bearer" or not hmac.compare_digest(candidate, self._secret):
            return _refuse(401, "send this run's control secret as 'Authorization: Bearer <secret>'")
        return None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        refusal = self.refusal(request)
        if refusal is not None:
            self.refusals[refusal.status] += 1
            # one line a minute at most: a web page looping requests must not flood the person's terminal
            self._log.refused(request.remote or "unknown", f"{request.method} {request.path}: {refusal.status}")
            return refusal
        return await handler(request)


async def get_state(request: web.Request) -> web.Response:
    return web.json_response(request.app[CONTROL_KEY].state())


async def post_action(request: web.Request) -> web.Response:
    action = request.match_info["action"]
    if action not in ACTIONS:
        return web.json_response({"error": f"unknown action {action!r}; one of {', '.join(ACTIONS)}"}, status=404)
    return web.json_response(request.app[CONTROL_KEY].act(action))


class ControlServer:
    """The endpoint on 127.0.0.1; ``start`` writes the secret file (``secret_file``), ``stop`` removes it."""

    def __init__(
        self, control: LiveControl, port: int, secret: str | None = None, secret_dir: Path | None = None
    ) -> None:
        self.secret = secret or generate_secret()
        self._guard = RequestGuard(self.secret)
        self._secret_dir = secret_dir
        app = web.Application(middlewares=[self._guard.middleware], client_max_size=4096)
        app[CONTROL_KEY] = control
        app.router.add_get("/control", get_state)
        app.router.add_post("/control/{action}", post_action)
        self._runner = web.AppRunner(app, access_log=None)
        self.port = port
        self.secret_file: Path | None = None

    async def start(self) -> None:
        """Listen, then write the secret file; OSError (and nothing left running) if either fails."""
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        try:
            await site.start()
            server = getattr(site, "_server", None)
            if server is not None and server.sockets:
                self.port = server.sockets[0].getsockname()[1]
            self._guard.port = self.port
            self.secret_file = write_secret(self.port, self.secret, self._secret_dir)
        except OSError:
            await self._runner.cleanup()
            raise

    @property
    def refusals(self) -> Counter[int]:
        """Requests refused so far, by status."""
        return self._guard.refusals

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/control"

    async def stop(self) -> None:
        await self._runner.cleanup()
        if self.secret_file is not None:
            remove_secret(self.secret_file, self.secret)
            self.secret_file = None
