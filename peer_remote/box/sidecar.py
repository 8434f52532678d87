"""One supervised child process: start it, wait for its health endpoint, restart it when it dies."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

logger = logging.getLogger(__name__)


class SidecarError(RuntimeError):
    """A sidecar did not become healthy in time, or keeps crashing."""


@dataclass(frozen=True)
class SidecarSpec:
    """How to run one sidecar; ``health_url`` None means "running is healthy" (coturn). ``health_method`` is the
    HTTP method the health endpoint answers (Fish Speech v1.5.0's is POST only). ``starts_after`` names sidecars of
    the same group that must be healthy before this one is started."""

    name: str
    argv: tuple[str, ...]
    health_url: str | None = None
    health_method: str = "GET"
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    health_timeout_s: float = 900.0
    restart_backoff_s: float = 2.0
    max_restarts: int = 20
    starts_after: tuple[str, ...] = ()


class Sidecar:
    """Runs ``spec`` under supervision; ``status()`` is what /healthz reports."""

    def __init__(self, spec: SidecarSpec, log_lines: int = 40) -> None:
        self.spec = spec
        self.state = "stopped"  # stopped | starting | running | restarting | failed
        self.restarts = 0
        self.last_exit: int | None = None
        self.started_at: float | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._tail: collections.deque[str] = collections.deque(maxlen=log_lines)
        self._supervise_task: asyncio.Task[None] | None = None
        self._readers: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.healthy = asyncio.Event()
        self.on_change: Callable[[Sidecar], None] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def status(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "pid": self.pid,
            "uptime_s": round(time.monotonic() - self.started_at, 1) if self.started_at and self.pid else None,
        }

    def log_tail(self) -> str:
        return "\n".join(self._tail)

    def _set_state(self, state: str) -> None:
        self.state = state
        if state != "running":
            self.healthy.clear()
        if self.on_change:
            self.on_change(self)

    async def _spawn(self) -> None:
        env = {**os.environ, **self.spec.env}
        self._process = await asyncio.create_subprocess_exec(
            *self.spec.argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            cwd=self.spec.cwd,
            start_new_session=True,
        )
        self.started_at = time.monotonic()
        logger.info("%s started (pid %d)", self.spec.name, self._process.pid)
        reader = asyncio.create_task(self._read_output(self._process))
        self._readers.add(reader)
        reader.add_done_callback(self._readers.discard)

    async def _read_output(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        name_logger = logging.getLogger(f"sidecar.{self.spec.name}")
        async for raw in process.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            self._tail.append(line)
            name_logger.debug("%s", line)

    async def _probe(self, session: aiohttp.ClientSession) -> bool:
        if self.spec.health_url is None:
            return True
        try:
            async with session.request(
                self.spec.health_method, self.spec.health_url, timeout=aiohttp.ClientTimeout(total=2.0)
            ) as response:
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def _wait_healthy(self, progress_every_s: float) -> None:
        """Poll the health URL until 200, the process exits, or the timeout passes."""
        assert self._process is not None
        process = self._process
        deadline = time.monotonic() + self.spec.health_timeout_s
        next_progress = time.monotonic() + progress_every_s
        async with aiohttp.ClientSession() as session:
            while True:
                if process.returncode is not None:
                    raise SidecarError(
                        f"{self.spec.name} exited with code {process.returncode} before it was healthy; "
                        f"last output:\n{self.log_tail()}"
                    )
                if await self._probe(session):
                    return
                now = time.monotonic()
                if now >= deadline:
                    raise SidecarError(
                        f"{self.spec.name} not healthy at {self.spec.health_url} after "
                        f"{self.spec.health_timeout_s:.0f} s; last output:\n{self.log_tail()}"
                    )
                if now >= next_progress:
                    waited = self.spec.health_timeout_s - (deadline - now)
                    logger.info(
                        "waiting for %s (%.0f s of %.0f s): %s",
                        self.spec.name,
                        waited,
                        self.spec.health_timeout_s,
                        self._tail[-1] if self._tail else "no output yet",
                    )
                    next_progress = now + progress_every_s
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), timeout=0.25)

    async def start(self, progress_every_s: float = 10.0) -> None:
        """Start the process and return once it is healthy; then keep it alive in the background."""
        self._stopping = False
        self._set_state("starting")
        await self._spawn()
        try:
            await self._wait_healthy(progress_every_s)
        except SidecarError:
            self._set_state("failed")
            await self._terminate()
            raise
        self._set_state("running")
        self.healthy.set()
        self._supervise_task = asyncio.create_task(self._supervise(progress_every_s))

    async def _supervise(self, progress_every_s: float) -> None:
        while not self._stopping:
            assert self._process is not None
            code = await self._process.wait()
            if self._stopping:
                return
            self.last_exit = code
            if self.restarts >= self.spec.max_restarts:
                logger.error("%s exited with %d; gave up after %d restarts", self.spec.name, code, self.restarts)
                self._set_state("failed")
                return
            self.restarts += 1
            logger.warning(
                "%s exited with %d; restart %d in %.1f s",
                self.spec.name,
                code,
                self.restarts,
                self.spec.restart_backoff_s,
            )
            self._set_state("restarting")
            await asyncio.sleep(self.spec.restart_backoff_s)
            if self._stopping:
                return
            await self._spawn()
            try:
                await self._wait_healthy(progress_every_s)
            except SidecarError as exc:
                logger.error("%s", exc)
                await self._terminate()
                continue  # the next wait() returns at once and counts another restart
            self._set_state("running")
            self.healthy.set()

    async def _terminate(self, grace_s: float = 10.0) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
        try:
            await asyncio.wait_for(process.wait(), timeout=grace_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, 9)
            await process.wait()

    async def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL after ``grace_s``."""
        self._stopping = True
        if self._supervise_task:
            self._supervise_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervise_task
        await self._terminate(grace_s)
        for reader in list(self._readers):
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(reader, timeout=1.0)
        self._set_state("stopped")


class SidecarGroup:
    """Sidecars started together, each after the ones it ``starts_after``, and stopped in reverse; ``status()`` for
    /healthz."""

    def __init__(self, specs: list[SidecarSpec]) -> None:
        self.sidecars = [Sidecar(spec) for spec in specs]

    def __getitem__(self, name: str) -> Sidecar:
        for sidecar in self.sidecars:
            if sidecar.spec.name == name:
                return sidecar
        raise KeyError(name)

    def status(self) -> dict[str, dict[str, Any]]:
        return {sidecar.spec.name: sidecar.status() for sidecar in self.sidecars}

    async def start(self, progress_every_s: float = 10.0) -> None:
        """Start every sidecar once those it ``starts_after`` are healthy (the rest load in parallel); raise the
        first failure, after stopping them all. A sidecar whose prerequisite failed is never started."""
        started: dict[str, asyncio.Task[None]] = {}

        async def start_in_turn(sidecar: Sidecar) -> None:
            for name in sidecar.spec.starts_after:
                if name not in started:
                    raise SidecarError(f"{sidecar.spec.name} starts after {name}, which is not in the group")
                await started[name]  # raises that sidecar's failure: this one is not started
            await sidecar.start(progress_every_s)

        for sidecar in self.sidecars:
            started[sidecar.spec.name] = asyncio.create_task(start_in_turn(sidecar), name=f"start-{sidecar.spec.name}")
        results = await asyncio.gather(*started.values(), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            await self.stop()
            raise failures[0]

    async def stop(self) -> None:
        for sidecar in reversed(self.sidecars):
            await sidecar.stop()
