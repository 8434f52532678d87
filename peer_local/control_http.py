"""The local control endpoint for hotkey tools: GET /control, POST /control/{take-over,hand-back,mute,unmute,skip}.

Bound to 127.0.0.1 only: whoever can reach it controls what the meeting sees.
"""

from __future__ import annotations

from aiohttp import web

from peer_local.control import ACTIONS, LiveControl

CONTROL_KEY = web.AppKey("control", LiveControl)


async def get_state(request: web.Request) -> web.Response:
    return web.json_response(request.app[CONTROL_KEY].state())


async def post_action(request: web.Request) -> web.Response:
    action = request.match_info["action"]
    if action not in ACTIONS:
        return web.json_response({"error": f"unknown action {action!r}; one of {', '.join(ACTIONS)}"}, status=404)
    return web.json_response(request.app[CONTROL_KEY].act(action))


class ControlServer:
    def __init__(self, control: LiveControl, port: int) -> None:
        app = web.Application()
        app[CONTROL_KEY] = control
        app.router.add_get("/control", get_state)
        app.router.add_post("/control/{action}", post_action)
        self._runner = web.AppRunner(app, access_log=None)
        self.port = port

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        await self._runner.cleanup()
