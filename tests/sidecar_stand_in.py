"""A STAND-IN for a model server sidecar (vLLM, Fish Speech): an ordinary process with a health endpoint.

Takes the real servers' address flags (``--port N`` as vLLM, ``--listen HOST:PORT`` as Fish Speech) and ignores
the rest. As vLLM 0.11.0 it answers health on GET /health (vllm/entrypoints/openai/api_server.py: ``@router.get("/health")``;
its ``--port`` is FrontendArgs.port in vllm/entrypoints/openai/cli_args.py). As Fish Speech v1.5.0 it answers health on POST /v1/health only (tools/server/views.py at that tag:
``@routes.http.post``; kui answers GET with 405), and, like its uvicorn, binds only once its models are loaded (the
app loads them in its startup hook, which uvicorn runs before it listens). STANDIN_READY_AFTER (seconds before /health answers 200), STANDIN_NEVER_READY=1, STANDIN_EXIT_AFTER
(seconds, then exit 3) shape its behaviour; it prints progress lines like a loading server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

from aiohttp import web


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int)
    parser.add_argument("--listen")
    args, _ = parser.parse_known_args()
    host, port = "127.0.0.1", args.port
    if args.listen:
        host, _, listen_port = args.listen.rpartition(":")
        port = int(listen_port)
    ready_at = time.monotonic() + float(os.environ.get("STANDIN_READY_AFTER", "0"))
    never_ready = os.environ.get("STANDIN_NEVER_READY") == "1"

    async def health(request: web.Request) -> web.Response:
        ready = not never_ready and time.monotonic() >= ready_at
        return web.json_response({"status": "ok" if ready else "loading"}, status=200 if ready else 503)

    async def fish_health(request: web.Request) -> web.Response:
        if request.method != "POST":
            return web.Response(status=405, headers={"Allow": "POST"})
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_route("*", "/v1/health", fish_health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    print(f"stand-in loading weights, serving on {host}:{port}", flush=True)
    if args.listen:  # Fish Speech: nothing listens until the models are loaded
        if never_ready:
            await asyncio.Event().wait()
        await asyncio.sleep(max(0.0, ready_at - time.monotonic()))
    await web.TCPSite(runner, host, port).start()
    exit_after = os.environ.get("STANDIN_EXIT_AFTER")
    if exit_after:
        await asyncio.sleep(float(exit_after))
        print("stand-in crashing on purpose", flush=True)
        sys.exit(3)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
