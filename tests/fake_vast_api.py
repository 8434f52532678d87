"""A FAKE Vast.ai REST API replaying recorded responses (tests/data/vast), so deploy tests need no network.

Runs a real HTTP server on 127.0.0.1 in a thread; the real ``vastai`` SDK talks to it through ``server_url``.
Every request is kept (method, path, query, Authorization header, JSON body) for assertions.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

RECORDED = Path(__file__).parent / "data" / "vast"


@dataclass
class FakeVastApi:
    signaling_port: int = 0
    loading_polls: int = 1  # how many show-instance answers say "loading" before "running"
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def body(self, name: str) -> bytes:
        text = (RECORDED / name).read_text().replace('"SIGNALING_PORT"', f'"{self.signaling_port}"')
        return text.encode()

    def answer(self, method: str, path: str) -> tuple[int, bytes]:
        shows = sum(
            1 for r in self.requests if r["method"] == "GET" and re.fullmatch(r"/api/v0/instances/\d+/", r["path"])
        )
        routes = {
            ("POST", r"/api/v0/bundles/"): lambda: self.body("offers.json"),
            ("PUT", r"/api/v0/asks/\d+/"): lambda: self.body("create.json"),
            ("GET", r"/api/v0/instances/9753186/"): lambda: self.body(
                "instance_loading.json" if shows <= self.loading_polls else "instance_running.json"
            ),
            ("GET", r"/api/v0/instances/\d+/"): lambda: b'{"instances": null}',
            ("GET", r"/api/v1/instances/"): lambda: self.body("instances.json"),
            ("DELETE", r"/api/v0/instances/\d+/"): lambda: self.body("destroy.json"),
        }
        for (verb, pattern), make in routes.items():
            if verb == method and re.fullmatch(pattern, path):
                return 200, make()
        return 404, b'{"success": false, "msg": "not recorded"}'


@contextmanager
def fake_vast_api(signaling_port: int = 0, loading_polls: int = 1) -> Iterator[FakeVastApi]:
    api = FakeVastApi(signaling_port, loading_polls)

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            api.requests.append(
                {
                    "method": self.command,
                    "path": parts.path,
                    "query": parts.query,
                    "authorization": self.headers.get("Authorization"),
                    "json": json.loads(raw) if raw else None,
                }
            )
            status, body = api.answer(self.command, parts.path)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815 (http.server names its handlers so)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
